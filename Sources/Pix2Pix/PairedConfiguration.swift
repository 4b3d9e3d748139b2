import SyntheticCT
import Networks
import CycleGAN
import Foundation
import NeuralNetwork
import Preprocessing
import Training

/// The generator of a paired model: the CycleGAN ResNet generator, or pix2pix's U-Net for 128 or 256 images
/// (pytorch-CycleGAN-and-pix2pix `--netG unet_128|unet_256`: 7 or 8 stride-2 stages).
public enum PairedGenerator: String, Codable, Sendable, CaseIterable {
    case resnet
    case unet128 = "unet_128"
    case unet256 = "unet_256"

    /// The U-Net's stages, nil for the ResNet generator.
    public var downsamplings: Int? {
        switch self {
        case .resnet: nil
        case .unet128: 7
        case .unet256: 8
        }
    }
}

/// The model and objective of paired training, pix2pix's defaults (Isola et al. 2017; pytorch-CycleGAN-and-pix2pix
/// `pix2pix_model.py`): U-Net 256 with dropout, 70×70 PatchGAN judging (MR, CT) channel pairs, vanilla GAN loss,
/// λ_L1 100, Adam 2e-4 with β1 0.5, no image pool — but instance normalisation by default: pix2pix trains with
/// batch normalisation at batch size 1, which normalises each image by its own statistics, and the paper infers the
/// same way ("batch normalization using the statistics of the test batch … termed instance normalization", §3.3),
/// whereas a BatchNorm model converted with its running statistics (PyTorch's eval mode, as `mr2ct convert` runs
/// it) is another function than the one trained (on the meat phantom: 70.1 HU MAE, ME −47.9 HU, on its own
/// training half; README "Paired training"). `norm = .batch` keeps the reference's layers (and imports its .pth).
///
/// Objective of G: λ_GAN · GAN(D(cat(MR, G(MR))), real) + λ_L1 · mean |G(MR) − CT| (mean over the body mask of the
/// MR with `l1InBody`); of D: ½ (GAN(D(cat(MR, CT)), real) + GAN(D(cat(MR, G(MR))), fake)). With λ_GAN = 0 no
/// discriminator is built: pure supervised L1 regression.
public struct Pix2PixConfiguration: Codable, Sendable, Hashable {
    public var generator: PairedGenerator = .unet256
    public var ngf = 64
    /// ResNet generator only.
    public var residualBlocks = 9
    /// Dropout 0.5 in the generator (pix2pix's U-Net: on; the ResNet generator: off unless asked).
    public var dropout = true
    /// The U-Net's and the discriminator's normalisation (pix2pix: batch; here instance, see above). The ResNet
    /// generator always uses instance normalisation, as in CycleGAN.
    public var norm: NormalizationKind = .instance
    public var ndf = 64
    public var discriminatorLayers = 3
    public var ganLoss: GANLoss = .vanilla
    public var lambdaL1: Float = 100
    public var lambdaGAN: Float = 1
    /// The L1 term only inside the MR's body mask (the voxels conversion keeps).
    public var l1InBody = false
    public var learningRate: Float = 2e-4
    public var beta1: Float = 0.5

    public init() {}

    /// Whether a discriminator is built (λ_GAN > 0).
    public var adversarial: Bool { lambdaGAN > 0 }

    /// The U-Net's configuration for `inputChannels` MR channels (nil for the ResNet generator).
    public func unet(inputChannels: Int) -> UNetConfiguration? {
        generator.downsamplings.map {
            UNetConfiguration(inputChannels: inputChannels, outputChannels: 1, ngf: ngf, downsamplings: $0,
                              dropout: dropout, norm: norm)
        }
    }

    public func resnet(inputChannels: Int) -> GeneratorConfiguration {
        GeneratorConfiguration(inputChannels: inputChannels, outputChannels: 1, ngf: ngf, residualBlocks: residualBlocks,
                               dropout: dropout)
    }

    /// The conditional discriminator's configuration: it sees MR channels + 1 CT channel.
    public func discriminator(inputChannels: Int) -> DiscriminatorConfiguration {
        DiscriminatorConfiguration(inputChannels: inputChannels + 1, ndf: ndf, layers: discriminatorLayers)
    }
}

/// Where the data and the outputs are; may differ between the sessions of one run (not compared on resume).
public struct PairedRunOptions: Codable, Sendable, Hashable {
    public var mrDirectory: String?
    public var ctDirectory: String?
    public var validationMRDirectory: String?
    public var validationCTDirectory: String?
    public var loop = LoopOptions()
    /// Processes of the data-parallel job of the latest session (mpirun -n N); nil for one process (not compared).
    public var ranks: Int?
    public init() {}
}

/// A paired run's `config.json`. Everything but `options` defines the result: the same configuration and data
/// give the same losses iteration for iteration, interrupted or not.
public struct PairedRunConfiguration: Codable, Sendable, Hashable {
    public static let currentFormat = "mr2ct-paired-run-1"
    public var format = PairedRunConfiguration.currentFormat
    /// How volumes become slices: the same `PreprocessingConfiguration` (and `SlicePipeline`) as unpaired training
    /// and conversion, stored with the generator.
    public var preprocessing = PreprocessingConfiguration()
    public var model = Pix2PixConfiguration()
    /// pix2pix's default: 100 epochs at the initial rate, then 100 decaying linearly (per iteration here).
    public var length = TrainingLength.epochs(100, decay: 100)
    public var seed: UInt64 = 0
    /// Random left–right flips of each pair (both images alike).
    public var augment = false
    /// Train on random square windows (the same window of MR and CT); nil: whole slices.
    public var cropSize: Int? = nil
    /// Pairs per iteration and process (`--batch-size`; batch normalisation then sees the batch's statistics);
    /// nil is 1 (the key is absent from config.json, as in runs made before the option).
    public var batchSize: Int? = nil
    /// The MR file names of the pairs and the epoch length when the run began (checked on resume).
    public var pairs: [String] = []
    public var epochLength = 0
    public var options = PairedRunOptions()

    /// A new run's configuration: pix2pix's model defaults, the preprocessing defaults but for the CT map, which is
    /// the soft-tissue-aware piecewise-linear one of `--preset sct` (an L1 error of 0.01 is ~4.5 HU in soft tissue
    /// there, 20 HU in the linear −1024…3000 window).
    public init() {
        preprocessing.ctMapping = .softTissue
    }

    /// The input channels of G (the MR's 2.5-D context slices).
    public var inputChannels: Int { preprocessing.contextSlices }

    /// The side of the training images.
    public var trainingSize: Int { cropSize ?? preprocessing.sliceSize }

    /// The loop's schedule: the constant part at the initial rate, then linear decay to 0 over the rest.
    public func schedule(epochLength: Int) -> IterationSchedule {
        switch length {
        case let .epochs(e, d):
            let l = max(1, epochLength)
            return IterationSchedule(totalIterations: (e + d) * l, constantIterations: e * l)
        case let .iterations(n):
            return IterationSchedule(totalIterations: n, constantIterations: n / 2)
        }
    }

    /// Every check of the configuration, in one place, before anything is allocated; one line each.
    public func validate() throws {
        func fail(_ reason: String) -> PairedConfigurationError { PairedConfigurationError(reason: reason) }
        do { try preprocessing.validate() } catch let error as PreprocessingError { throw fail(error.reason) }
        if let batchSize, !(1...256).contains(batchSize) { throw fail("batch size is \(batchSize), outside 1…256") }
        let m = model
        if let unet = m.unet(inputChannels: inputChannels) {
            do { try unet.validate() } catch { throw fail("\(error)") }
            for (side, what) in [(preprocessing.sliceSize, "--slice-size"), (trainingSize, "the training size")]
            where side % unet.sizeMultiple != 0 {
                throw fail("\(what) \(side) is not a multiple of \(unet.sizeMultiple), which --generator \(m.generator.rawValue) needs")
            }
        } else {
            do { try m.resnet(inputChannels: inputChannels).validate() } catch { throw fail("\(error)") }
        }
        if m.adversarial {
            do { try m.discriminator(inputChannels: inputChannels).validate() } catch { throw fail("\(error)") }
        }
        if let cropSize, let problem = UnpairedSliceLoader.cropProblem(cropSize, sliceSize: preprocessing.sliceSize) {
            throw fail(problem)
        }
        for (value, name) in [(m.lambdaL1, "lambda-l1"), (m.lambdaGAN, "lambda-gan")] where !(value.isFinite && value >= 0) {
            throw fail("--\(name) must be a number ≥ 0, not \(value)")
        }
        guard m.lambdaL1 > 0 || m.lambdaGAN > 0 else { throw fail("--lambda-l1 and --lambda-gan are both 0: nothing to train") }
        guard m.learningRate.isFinite, m.learningRate > 0 else { throw fail("--lr must be a positive number") }
        guard m.beta1 >= 0, m.beta1 < 1 else { throw fail("--beta1 must be in [0, 1)") }
        switch length {
        case let .epochs(e, d): guard e >= 0, d >= 0, e + d > 0 else { throw fail("the run has no epochs") }
        case let .iterations(n): guard n > 0 else { throw fail("the run has no iterations") }
        }
    }

    /// The fields that make another run (everything but `options`), as "path: run ≠ given".
    public func differences(from other: PairedRunConfiguration) -> [String] {
        var a = self, b = other
        a.options = PairedRunOptions()
        b.options = PairedRunOptions()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let x = try? JSONSerialization.jsonObject(with: encoder.encode(a)) as? [String: Any],
              let y = try? JSONSerialization.jsonObject(with: encoder.encode(b)) as? [String: Any] else { return ["configuration"] }
        var out: [String] = []
        func render(_ v: Any?) -> String {
            guard let v else { return "(none)" }
            return (try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]))
                .map { String(decoding: $0, as: UTF8.self) } ?? "\(v)"
        }
        func compare(_ p: [String: Any], _ q: [String: Any], _ path: String) {
            for key in Set(p.keys).union(q.keys).sorted() {
                let sub = path.isEmpty ? key : path + "." + key
                if let u = p[key] as? [String: Any], let v = q[key] as? [String: Any] { compare(u, v, sub); continue }
                let (u, v) = (render(p[key]), render(q[key]))
                if u != v { out.append("\(sub): \(u) ≠ \(v)") }
            }
        }
        compare(x, y, "")
        return out
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    public static func read(_ url: URL) throws -> PairedRunConfiguration {
        let configuration: PairedRunConfiguration
        do { configuration = try JSONDecoder().decode(PairedRunConfiguration.self, from: try Data(contentsOf: url)) } catch {
            throw RunError.checkpoint(path: url.path, reason: "not a paired run configuration (\(error))")
        }
        guard configuration.format == currentFormat else {
            throw RunError.checkpoint(path: url.path, reason: "run folder format \"\(configuration.format)\" is not \"\(currentFormat)\"")
        }
        return configuration
    }

    /// Whether `url` holds a paired run (its config.json says so).
    public static func isPairedRun(_ directory: URL) -> Bool {
        let url = directory.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["format"] as? String == currentFormat
    }
}

/// A paired configuration outside its limits: one line.
public struct PairedConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var reason: String
    public var description: String { reason }
}
