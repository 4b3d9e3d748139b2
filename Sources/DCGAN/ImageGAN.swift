import Foundation
import MR2CTSupport
import NeuralNetwork
import Training

/// The names examples/dcgan prints each iteration: Loss_D, Loss_G, D(x), D(G(z)) before and after D's update.
public enum GANLossKey: String, TrainingKey {
    case lossD = "Loss_D"
    case lossG = "Loss_G"
    case dReal = "D_x"
    case dFakeBefore = "D_G_z1"
    case dFakeAfter = "D_G_z2"
}

/// The pictures of a GAN's grid.
public enum GANImageKey: String, TrainingKey {
    /// The generator's images of the run's fixed noise (per class for cgan).
    case fixedNoise = "fixed_noise"
    /// Real training images.
    case real
}

/// One batch: N real images (N × C × S × S, in [−1, 1]), their classes (cgan; N floats) and the noise z of the
/// iteration (N × nz × 1 × 1).
public struct GANBatch {
    public var real: Tensor
    public var labels: Tensor?
    public var noise: Tensor

    public init(real: Tensor, labels: Tensor?, noise: Tensor) {
        self.real = real
        self.labels = labels
        self.noise = noise
    }
}

/// A DC-GAN or conditional GAN with its optimisers and the training step of PyTorch's examples/dcgan `main.py`:
/// D on the real batch (target 1) and on G(z) detached (target 0), one Adam step of D; then G through the updated
/// D (target 1), one Adam step of G. Loss: binary cross-entropy (on logits, see `dcganDiscriminatorLayers`).
/// For cgan the fakes are made for the real batch's classes, and D sees every image with its class.
public final class ImageGAN: TrainableModel {
    public typealias Batch = GANBatch
    public typealias LossKey = GANLossKey
    public typealias ImageKey = GANImageKey

    public let configuration: GANConfiguration
    public let generator: ConditionedNetwork
    public let discriminator: ConditionedNetwork
    public let optimizerG: Adam
    public let optimizerD: Adam
    /// The noise of the picture grids (8 per row; one row per class for cgan), fixed for the run.
    public let fixedNoise: Tensor
    /// The last step's fake images (N × C × S × S).
    public private(set) var lastFake: Tensor?
    private var lastReal: Tensor?

    let recordReal = LayerRecord(), recordFake = LayerRecord(), recordGeneratorPass = LayerRecord(), recordG = LayerRecord()

    public init(configuration: GANConfiguration) {
        self.configuration = configuration
        generator = configuration.makeGenerator()
        discriminator = configuration.makeDiscriminator()
        var seeds = SeededRandom(seed: configuration.seed)
        generator.initializeWeights(seed: seeds.next())
        discriminator.initializeWeights(seed: seeds.next())
        optimizerG = Adam(parameters: generator.parameters, learningRate: configuration.learningRate, beta1: configuration.beta1)
        optimizerD = Adam(parameters: discriminator.parameters, learningRate: configuration.learningRate, beta1: configuration.beta1)
        let rows = max(1, configuration.classCount)
        fixedNoise = Self.noise(count: 8 * rows, nz: configuration.nz, random: &seeds)
    }

    /// `count` × nz × 1 × 1 standard normal deviates.
    public static func noise(count: Int, nz: Int, random: inout SeededRandom) -> Tensor {
        let t = Tensor(shape: [count, nz, 1, 1])
        for i in 0..<t.count { t.data[i] = Float(random.nextNormal()) }
        return t
    }

    public func trainStep(_ batch: GANBatch, learningRate: Float) -> StepLosses<GANLossKey> {
        let D = discriminator, G = generator
        optimizerD.learningRate = learningRate
        optimizerG.learningRate = learningRate
        // (1) D: maximise log D(x) + log(1 − D(G(z))).
        D.zeroGradients()
        let outReal = D.forward(batch.real, labels: batch.labels, record: recordReal)
        let gradient = Tensor(shape: outReal.shape)
        let lossReal = Loss.binaryCrossEntropyWithLogits(outReal, target: 1, gradient: gradient)
        let dReal = Self.meanSigmoid(outReal)
        D.backward(gradient, record: recordReal, gradInput: nil, parameterGradients: true)
        let fake = G.forward(batch.noise, labels: batch.labels, record: recordG)
        let outFake = D.forward(fake, labels: batch.labels, record: recordFake)
        let lossFake = Loss.binaryCrossEntropyWithLogits(outFake, target: 0, gradient: gradient)
        let dFakeBefore = Self.meanSigmoid(outFake)
        D.backward(gradient, record: recordFake, gradInput: nil, parameterGradients: true)
        optimizerD.step()
        // (2) G: maximise log D(G(z)), through the updated D (frozen).
        G.zeroGradients()
        let outG = D.forward(fake, labels: batch.labels, record: recordGeneratorPass)
        let lossG = Loss.binaryCrossEntropyWithLogits(outG, target: 1, gradient: gradient)
        let dFakeAfter = Self.meanSigmoid(outG)
        let gradFake = recordG.savedTensor(0, shape: fake.shape)
        D.backward(gradient, record: recordGeneratorPass, gradInput: gradFake, parameterGradients: false)
        G.backward(gradFake, record: recordG, gradInput: nil, parameterGradients: true)
        optimizerG.step()
        lastFake = fake
        lastReal = batch.real
        return StepLosses([.lossD: lossReal + lossFake, .lossG: lossG, .dReal: dReal, .dFakeBefore: dFakeBefore,
                           .dFakeAfter: dFakeAfter])
    }

    static func meanSigmoid(_ logits: Tensor) -> Float {
        var s = 0.0
        for i in 0..<logits.count { s += 1 / (1 + Foundation.exp(-Double(logits.data[i]))) }
        return Float(s / Double(logits.count))
    }

    /// Images for `noise` (N × nz × 1 × 1) and `labels` (cgan: N class indices), in inference mode.
    public func generate(noise: Tensor, labels: Tensor?) -> Tensor { generator.infer(noise, labels: labels) }

    /// The fixed-noise labels: row r (8 images) of class r.
    public var fixedLabels: Tensor? {
        guard configuration.family == .cgan else { return nil }
        return Tensor(shape: [fixedNoise.shape[0]], values: (0..<fixedNoise.shape[0]).map { Float($0 / 8) })
    }

    // MARK: TrainableModel

    /// The metadata of G.safetensors: the configuration, so the file alone is a complete model for `gan sample`.
    public func generatorMetadata() -> [String: String] {
        ["format": GANModelFile.format, "role": "G", "family": configuration.family.rawValue, "gan": configuration.jsonString()]
    }

    public var checkpointComponents: [CheckpointComponent] {
        [.network("G.safetensors", generator, metadata: { self.generatorMetadata() }),
         .network("D.safetensors", discriminator, metadata: {
             ["format": GANModelFile.format, "role": "D", "gan": self.configuration.jsonString()] }),
         .optimizer("optimizer_G.safetensors", optimizerG),
         .optimizer("optimizer_D.safetensors", optimizerD)]
    }

    public func sampleImages() -> [[SampleImage<GANImageKey>]] {
        let images = generate(noise: fixedNoise, labels: fixedLabels)
        var rows = Self.planes(images, key: .fixedNoise, perRow: 8, labels: configuration.family == .cgan
            ? configuration.classNames.map { "class \($0)" } : nil)
        if let lastReal { rows += Self.planes(lastReal, key: .real, perRow: 8, labels: nil, limit: 8, caption: "real") }
        return rows
    }

    /// The first channel of each image, 8 per row, the row's first cell labelled.
    static func planes(_ t: Tensor, key: GANImageKey, perRow: Int, labels: [String]?, limit: Int = .max,
                       caption: String? = nil) -> [[SampleImage<GANImageKey>]] {
        let n = min(t.shape[0], limit), height = t.shape[2], width = t.shape[3]
        let plane = height * width, perImage = t.count / t.shape[0]
        var rows: [[SampleImage<GANImageKey>]] = []
        var start = 0
        while start < n {
            var row: [SampleImage<GANImageKey>] = []
            for i in start..<min(n, start + perRow) {
                let label: String? = i == start ? (labels?[safe: start / perRow] ?? caption) : nil
                let pixels = Array(t.data[(i * perImage)..<(i * perImage + plane)])
                row.append(SampleImage(key: key, label: label, width: width, height: height, pixels: pixels))
            }
            rows.append(row)
            start += perRow
        }
        return rows
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
