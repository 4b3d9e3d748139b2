import Foundation
import MR2CTSupport
import NeuralNetwork
import Reporting
import Safetensors
import Training

/// A GAN run's `config.json`: the model, the data, the length and the loop's options.
public struct GANRunConfiguration: Codable, Sendable, Hashable {
    public static let currentFormat = "mr2ct-gan-run-1"
    public var format = GANRunConfiguration.currentFormat
    public var gan = GANConfiguration()
    public var source: PatchSource
    /// The run's length; nil: `epochs` epochs.
    public var iterations: Int?
    /// examples/dcgan's `--niter` default.
    public var epochs = 25
    public var options = LoopOptions()
    /// The patch count when the run began (a resumed run must see the same data).
    public var patchCount: Int?

    public init(source: PatchSource) { self.source = source }

    public static func read(_ url: URL) throws -> GANRunConfiguration {
        do { return try JSONDecoder().decode(GANRunConfiguration.self, from: try Data(contentsOf: url)) } catch {
            throw RunError.checkpoint(path: url.path, reason: "not a GAN run configuration (\(error))")
        }
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// What makes another run: the model, the data and the length (not how often it saves or samples).
    public func differences(from other: GANRunConfiguration) -> [String] {
        var d = gan.differences(from: other.gan)
        if source != other.source { d.append("data: run \(source.images) (labels \(source.labels ?? "none")), given \(other.source.images) (labels \(other.source.labels ?? "none"))") }
        if iterations != other.iterations || (iterations == nil && epochs != other.epochs) {
            d.append("length: run \(iterations.map { "\($0) iterations" } ?? "\(epochs) epochs"), given \(other.iterations.map { "\($0) iterations" } ?? "\(other.epochs) epochs")")
        }
        return d
    }
}

/// One session of a DC-GAN / conditional-GAN run on the `Training` layer: opens or creates the run folder, checks
/// the stored configuration, reads the patches, builds the model, resumes from the newest complete set and wires
/// the log, grids, report and progress callbacks.
public final class GANRun {
    public let run: RunDirectory
    public let configuration: GANRunConfiguration
    public let model: ImageGAN
    public let data: GANTrainingData
    public let loop: TrainingLoop<ImageGAN, GANTrainingData>

    /// The configuration stored in `directory`, nil when it holds no run.
    public static func storedConfiguration(_ directory: URL) throws -> GANRunConfiguration? {
        let url = directory.appendingPathComponent("config.json")
        return FileManager.default.fileExists(atPath: url.path) ? try GANRunConfiguration.read(url) : nil
    }

    /// `intensity`: the map of patch units to [−1, 1] for a new run (nil: the data's own).
    public init(directory: URL, configuration requested: GANRunConfiguration, intensity: IntensityRange?,
                requireExisting: Bool, messages: @escaping (String) -> Void) throws {
        let run = try RunDirectory(url: directory)
        let stored = run.hasConfiguration ? try GANRunConfiguration.read(run.configurationURL) : nil
        if stored == nil, requireExisting { throw RunError.noRun(path: run.url.path) }
        if let stored, let intensity, intensity != stored.gan.intensity {
            throw RunError.configurationMismatch(path: run.url.path, differences: [
                "intensity: run \(stored.gan.intensity.lower),\(stored.gan.intensity.upper), given \(intensity.lower),\(intensity.upper)"])
        }
        var configuration = requested
        let dataset = try PatchDataset(source: configuration.source, side: configuration.gan.imageSize,
                                       channels: configuration.gan.channels, conditional: configuration.gan.family == .cgan,
                                       intensity: stored?.gan.intensity ?? intensity, seed: configuration.gan.seed)
        for skip in dataset.skipped { messages("skipped \(skip.path): \(skip.reason)") }
        configuration.gan.classNames = dataset.classNames
        configuration.gan.intensity = dataset.intensity
        configuration.patchCount = dataset.count
        if let stored {
            let differences = stored.differences(from: configuration)
            guard differences.isEmpty else { throw RunError.configurationMismatch(path: run.url.path, differences: differences) }
            if stored.patchCount != dataset.count {
                throw RunError.data(path: run.url.path, reason: "the training data changed since the run began "
                    + "(\(stored.patchCount ?? 0) patches, now \(dataset.count))")
            }
        }
        do { try configuration.gan.validate() } catch { throw RunError.data(path: configuration.source.images, reason: "\(error)") }
        try AtomicFile.write(try configuration.jsonData(), to: run.configurationURL)
        self.run = run
        self.configuration = configuration
        model = ImageGAN(configuration: configuration.gan)
        data = GANTrainingData(dataset: dataset, configuration: configuration.gan)
        let total = configuration.iterations ?? configuration.epochs * data.epochLength
        loop = TrainingLoop(run: run, model: model, data: data, schedule: IterationSchedule(totalIterations: total),
                            initialLearningRate: configuration.gan.learningRate, options: configuration.options)
        loop.onMessage = messages
        try loop.resume()
        let grid = PictureGridCallback(model: model, directory: run.samplesDirectory)
        let family = configuration.gan.family == .cgan ? "conditional GAN" : "DC-GAN"
        let report = ReportCallback(run: run, title: "MR2CT \(family) training: \(run.url.lastPathComponent)",
                                    configuration: ConfigurationTable.rows(configuration), grid: grid,
                                    firstChart: [.lossD, .lossG], chartTitles: ("Losses (BCE)", "D(x), D(G(z)) before and after D's step"),
                                    gridCaption: configuration.gan.family == .cgan
                                        ? "generated images of the fixed noise, one row per class; last row: real patches"
                                        : "generated images of the fixed noise; last row: real patches")
        loop.callbacks = [grid, report]
    }
}

/// `gan sample`: images from a generator file for given or seeded noise.
public enum GANSampler {
    /// N × nz × 1 × 1 noise from tensor `z` of a safetensors file (N × nz or N × nz × 1 × 1).
    public static func readNoise(_ url: URL, nz: Int) throws -> Tensor {
        let archive = try SafetensorsFile.read(url)
        guard let info = archive.info(named: "z") else {
            throw GANModelFile.LoadError(path: url.path, reason: "no tensor \"z\" (N × \(nz) × 1 × 1)")
        }
        let shape = info.shape
        guard shape.count >= 2, shape[0] >= 1, shape[1] == nz, shape.dropFirst(2).allSatisfy({ $0 == 1 }) else {
            throw GANModelFile.LoadError(path: url.path, reason: "tensor \"z\" has shape \(shape), the model needs N × \(nz) × 1 × 1")
        }
        let values = try archive.tensor(named: "z").values
        guard values.allSatisfy(\.isFinite) else { throw GANModelFile.LoadError(path: url.path, reason: "tensor \"z\" holds non-finite values") }
        return Tensor(shape: [shape[0], nz, 1, 1], values: values)
    }

    /// Seeded standard-normal noise.
    public static func seededNoise(count: Int, nz: Int, seed: UInt64) -> Tensor {
        var random = SeededRandom(seed: seed)
        return ImageGAN.noise(count: count, nz: nz, random: &random)
    }

    /// Generates and writes `<dir>/sample_0000.png …` (the [−1, 1] output as 8-bit gray, or RGB for 3 channels)
    /// and `<dir>/images.safetensors` (tensor `images`, N × C × H × W in the patch units of the model's intensity
    /// map; tensor `labels` for cgan). Refuses existing files unless `overwrite`. Returns the images.
    @discardableResult
    public static func write(generator: ConditionedNetwork, configuration: GANConfiguration, noise: Tensor, classIndex: Int?,
                             to directory: URL, overwrite: Bool) throws -> Tensor {
        let n = noise.shape[0]
        let labels = configuration.family == .cgan ? Tensor(shape: [n], values: Array(repeating: Float(classIndex ?? 0), count: n)) : nil
        let output = generator.infer(noise, labels: labels)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let pngs = (0..<n).map { directory.appendingPathComponent(String(format: "sample_%04d.png", $0)) }
        let tensorURL = directory.appendingPathComponent("images.safetensors")
        if !overwrite, let existing = (pngs + [tensorURL]).first(where: { FileManager.default.fileExists(atPath: $0.path) }) {
            throw GANModelFile.LoadError(path: existing.path, reason: "exists (use --overwrite)")
        }
        let c = configuration.channels, s = configuration.imageSize, plane = s * s
        for (i, url) in pngs.enumerated() {
            let base = i * c * plane
            func gray(_ v: Float) -> UInt8 { UInt8(max(0, min(255, ((v + 1) / 2 * 255).rounded()))) }
            if c == 3 {
                var rgb = [UInt8](repeating: 0, count: 3 * plane)
                for p in 0..<plane { for ch in 0..<3 { rgb[3 * p + ch] = gray(output.data[base + ch * plane + p]) } }
                try AtomicFile.write(to: url) { try PNGImage.writeRGB8(rgb, width: s, height: s, to: $0) }
            } else {
                let pixels = (0..<plane).map { gray(output.data[base + $0]) }
                try AtomicFile.write(to: url) { try PNGImage.writeGray8(pixels, width: s, height: s, to: $0) }
            }
        }
        let values = output.toArray().map { configuration.intensity.value($0) }
        var tensors: [(name: String, shape: [Int], values: [Float])] = [("images", output.shape, values)]
        if let labels { tensors.append(("labels", [n], labels.toArray())) }
        try SafetensorsFile.write(tensors, metadata: ["gan": configuration.jsonString(),
                                                      "units": "patch units: \(configuration.intensity.lower)…\(configuration.intensity.upper) ↔ [-1, 1]"],
                                  to: tensorURL)
        return Tensor(shape: output.shape, values: values)
    }
}
