import SyntheticCT
import Networks
import CycleGAN
import Foundation
import MR2CTSupport
import NeuralNetwork
import Preprocessing
import Reporting
import Training

/// The losses pix2pix reports (`pix2pix_model.py` `loss_names`): G_GAN and G_L1 weighted as they enter G's
/// objective (λ_GAN · GAN, λ_L1 · L1), D_real and D_fake unweighted (D's objective is their mean).
public enum Pix2PixLossKey: String, TrainingKey {
    case gGAN = "G_GAN"
    case gL1 = "G_L1"
    case dReal = "D_real"
    case dFake = "D_fake"
}

/// The pictures of a paired run's grid: MR | synthetic CT | true CT | error map.
public enum Pix2PixImageKey: String, TrainingKey {
    case mr = "real_A"
    case syntheticCT = "fake_B"
    case ct = "real_B"
    case error
}

/// pix2pix (Isola et al. 2017) for MR→CT on the `Training` layer: a generator G (U-Net or ResNet), a conditional
/// PatchGAN D on (MR, CT) channel pairs, and the step of pytorch-CycleGAN-and-pix2pix
/// `Pix2PixModel.optimize_parameters`:
///
/// 1. fake = G(MR);
/// 2. D (train mode): loss_D = ½ (GAN(D(cat(MR, fake)) detached, fake) + GAN(D(cat(MR, CT)), real)), one Adam step;
/// 3. G through the updated D (its parameters frozen, still in train mode): λ_GAN · GAN(D(cat(MR, fake)), real)
///    + λ_L1 · mean |fake − CT| (over the MR's body mask with `l1InBody`), one Adam step.
///
/// With λ_GAN = 0 there is no D and the step is supervised L1 regression.
public final class Pix2PixModel: TrainableModel {
    public typealias Batch = PairedBatch
    public typealias LossKey = Pix2PixLossKey
    public typealias ImageKey = Pix2PixImageKey

    public let configuration: PairedRunConfiguration
    /// The generator, and the same object as the network conversion runs.
    public let generator: SequentialNetwork
    public let translator: any SliceTranslationNetwork
    public let discriminator: SequentialNetwork?
    public let optimizerG: Adam
    public let optimizerD: Adam?
    /// The training MR's body histogram for the generator file's metadata.
    public var mrHistogram: IntensityHistogram?
    /// The pair shown in the picture grids (nil: none).
    public var sampleBatch: PairedBatch?

    let recordG = LayerRecord(), recordDFake = LayerRecord(), recordDReal = LayerRecord(), recordDG = LayerRecord()
    private var buffers: [String: Tensor] = [:]

    public convenience init(configuration: PairedRunConfiguration) {
        self.init(configuration: configuration, unet: configuration.model.unet(inputChannels: configuration.inputChannels))
    }

    /// `unet`: the U-Net to build (nil: the ResNet generator); tests use U-Nets of other depths than 128/256.
    init(configuration: PairedRunConfiguration, unet: UNetConfiguration?) {
        self.configuration = configuration
        let m = configuration.model, channels = configuration.inputChannels
        if let unet {
            let g = UNetGenerator(unet)
            generator = g
            translator = g
        } else {
            let g = ResnetGenerator(m.resnet(inputChannels: channels))
            generator = g
            translator = g
        }
        if m.adversarial {
            let d = m.discriminator(inputChannels: channels)
            discriminator = m.norm == .batch ? BatchNormPatchDiscriminator(d) : NLayerDiscriminator(d)
        } else {
            discriminator = nil
        }
        var streams = (0..<3).map { SeededRandom(seed: configuration.seed, stream: UInt64($0)) }
        generator.initializeWeights(seed: streams[0].next())
        discriminator?.initializeWeights(seed: streams[1].next())
        let dropoutSeed = streams[2].next()
        for (i, d) in generator.dropoutLayers.enumerated() { d.random = SeededRandom(seed: dropoutSeed, stream: UInt64(i)) }
        optimizerG = Adam(parameters: generator.parameters, learningRate: m.learningRate, beta1: m.beta1, beta2: 0.999)
        optimizerD = discriminator.map { Adam(parameters: $0.parameters, learningRate: m.learningRate, beta1: m.beta1, beta2: 0.999) }
    }

    private func buffer(_ name: String, _ shape: [Int]) -> Tensor {
        if let t = buffers[name], t.shape == shape { return t }
        let t = Tensor(shape: shape)
        buffers[name] = t
        return t
    }

    /// cat([a, b], channels) of two batches of N images into `out` (image by image).
    static func concatenate(_ a: Tensor, _ b: Tensor, into out: Tensor) {
        let images = max(1, a.shape[0]), na = a.count / images, nb = b.count / images
        for k in 0..<images {
            let o = out.data.baseAddress! + k * (na + nb)
            o.update(from: a.data.baseAddress! + k * na, count: na)
            (o + na).update(from: b.data.baseAddress! + k * nb, count: nb)
        }
    }

    /// The `b` channels of cat([a, b], channels) (`pair`, N images) into `out`: the gradient that reaches b.
    static func secondPart(of pair: Tensor, firstCount: Int, into out: Tensor) {
        let images = max(1, pair.shape[0]), na = firstCount / images, nb = out.count / images
        for k in 0..<images {
            (out.data.baseAddress! + k * nb).update(from: pair.data.baseAddress! + k * (na + nb) + na, count: nb)
        }
    }

    public func trainStep(_ batch: PairedBatch, learningRate: Float) -> StepLosses<Pix2PixLossKey> {
        let m = configuration.model
        optimizerG.learningRate = learningRate
        optimizerD?.learningRate = learningRate
        let fake = generator.forward(batch.mr, record: recordG)
        let gradFake = buffer("gradFake", fake.shape)
        var values: [Pix2PixLossKey: Float] = [:]
        if let D = discriminator, let optimizerD {
            let pairShape = [batch.mr.shape[0], batch.mr.shape[1] + 1, fake.shape[2], fake.shape[3]]
            let fakeAB = buffer("fakeAB", pairShape), realAB = buffer("realAB", pairShape)
            Self.concatenate(batch.mr, fake, into: fakeAB)
            Self.concatenate(batch.mr, batch.ct, into: realAB)
            // D: fake pairs (detached) then real pairs, each half of D's objective.
            optimizerD.zeroGradients()
            let predictionFake = D.forward(fakeAB, record: recordDFake)
            let gradPrediction = buffer("gradPrediction", predictionFake.shape)
            let lossFake = m.ganLoss(predictionFake, real: false, scale: 0.5, gradient: gradPrediction)
            D.backward(gradPrediction, record: recordDFake)
            let predictionReal = D.forward(realAB, record: recordDReal)
            let lossReal = m.ganLoss(predictionReal, real: true, scale: 0.5, gradient: gradPrediction)
            D.backward(gradPrediction, record: recordDReal)
            optimizerD.step()
            values[.dFake] = 2 * lossFake
            values[.dReal] = 2 * lossReal
            // G's adversarial term through the updated, frozen D.
            optimizerG.zeroGradients()
            let prediction = D.forward(fakeAB, record: recordDG)
            let lossG = m.ganLoss(prediction, real: true, scale: m.lambdaGAN, gradient: gradPrediction)
            let gradAB = buffer("gradAB", pairShape)
            D.backward(gradPrediction, record: recordDG, gradInput: gradAB, parameterGradients: false)
            Self.secondPart(of: gradAB, firstCount: batch.mr.count, into: gradFake)
            values[.gGAN] = lossG
        } else {
            optimizerG.zeroGradients()
            gradFake.fill(0)
        }
        values[.gL1] = Loss.l1(fake, target: batch.ct, mask: m.l1InBody ? batch.body : nil, scale: m.lambdaL1, accumulatingInto: gradFake)
        generator.backward(gradFake, record: recordG)
        optimizerG.step()
        return StepLosses(values)
    }

    // MARK: TrainableModel

    /// The generator file's metadata: a complete model for `mr2ct convert` (`SyntheticCTModel`).
    public func generatorMetadata() -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json<T: Encodable>(_ value: T) -> String { (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}" }
        let channels = configuration.inputChannels
        var metadata = ["format": PairedRunConfiguration.currentFormat, "role": "G", "direction": "MR->CT", "training": "paired",
                        "preprocessing": json(configuration.preprocessing), "pix2pix": json(configuration.model)]
        if let unet = configuration.model.unet(inputChannels: channels) {
            metadata["architecture"] = "unet"
            metadata["generator"] = json(unet)
        } else {
            metadata["architecture"] = "resnet"
            metadata["generator"] = json(configuration.model.resnet(inputChannels: channels))
        }
        if let mrHistogram, mrHistogram.total > 0 { metadata[IntensityHistogram.metadataKey] = mrHistogram.json }
        return metadata
    }

    /// G.safetensors, D.safetensors, optimizer_G/optimizer_D.safetensors and dropout.json (the generator's Dropout
    /// generators, so a resumed run draws the same masks).
    public var optimizers: [Adam] { [optimizerG] + (optimizerD.map { [$0] } ?? []) }

    /// Frees the step's records and the networks' training workspaces (the loop calls it before validating); the
    /// next step allocates them again and computes the same bits.
    public func releaseStepBuffers() {
        for r in [recordG, recordDFake, recordDReal, recordDG] { r.releaseBuffers() }
        generator.releaseTrainingBuffers()
        discriminator?.releaseTrainingBuffers()
    }

    public var checkpointComponents: [CheckpointComponent] {
        var components: [CheckpointComponent] = [.network("G.safetensors", generator, metadata: { self.generatorMetadata() }),
                                                 .optimizer("optimizer_G.safetensors", optimizerG)]
        if let discriminator, let optimizerD {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = (try? encoder.encode(configuration.model)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            components.append(.network("D.safetensors", discriminator, metadata: {
                ["format": PairedRunConfiguration.currentFormat, "role": "D", "pix2pix": json] }))
            components.append(.optimizer("optimizer_D.safetensors", optimizerD))
        }
        let dropout = generator.dropoutLayers
        components.append(.json("dropout.json", get: { dropout.map(\.random) }, set: { states in
            for (d, s) in zip(dropout, states) { d.random = s }
        }))
        return components
    }

    /// One row: the sample pair's MR (centre channel), G's synthetic CT and the true CT (HU, window −1000…1500),
    /// and |sCT − CT| (HU, 0…300).
    public func sampleImages() -> [[SampleImage<Pix2PixImageKey>]] {
        guard let batch = sampleBatch else { return [] }
        let images = PairedSampleRow.images(mr: batch.mr, syntheticCT: translator.infer(batch.mr), ct: batch.ct,
                                            preprocessing: configuration.preprocessing)
        return [zip([Pix2PixImageKey.mr, .syntheticCT, .ct, .error], images).map { key, image in
            SampleImage(key: key, label: image.label, width: image.width, height: image.height, pixels: image.pixels, window: image.window)
        }]
    }
}
