import Foundation
import MR2CTSupport

/// Options of the ResNet generator (pytorch-CycleGAN-and-pix2pix `ResnetGenerator`, `resnet_9blocks`).
public struct GeneratorConfiguration: Codable, Sendable, Hashable {
    public var inputChannels = 1
    public var outputChannels = 1
    public var ngf = 64
    public var residualBlocks = 9
    public var dropout = false

    public init(inputChannels: Int = 1, outputChannels: Int = 1, ngf: Int = 64, residualBlocks: Int = 9, dropout: Bool = false) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.ngf = ngf
        self.residualBlocks = residualBlocks
        self.dropout = dropout
    }

    /// Documented limits, checked before any weight is allocated (the reference uses ngf 64 and 9 blocks; ngf 256
    /// already gives 1024 channels and about 190 M parameters at the bottleneck).
    public static let ngfRange = 1...256
    public static let residualBlocksRange = 0...64
    public static let channelRange = 1...5

    /// Throws a one-line `ConfigurationError` when a value is outside its documented limit.
    public func validate() throws {
        func check(_ value: Int, _ range: ClosedRange<Int>, _ name: String) throws {
            guard range.contains(value) else {
                throw ConfigurationError("generator \(name) is \(value), outside \(range.lowerBound)…\(range.upperBound)")
            }
        }
        try check(ngf, Self.ngfRange, "ngf")
        try check(residualBlocks, Self.residualBlocksRange, "residual blocks")
        try check(inputChannels, Self.channelRange, "input channels")
        try check(outputChannels, Self.channelRange, "output channels")
    }
}

/// A network configuration outside its documented limits (one line).
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Options of the PatchGAN discriminator (pytorch-CycleGAN-and-pix2pix `NLayerDiscriminator`, `basic` = 3 layers).
public struct DiscriminatorConfiguration: Codable, Sendable, Hashable {
    public var inputChannels = 1
    public var ndf = 64
    public var layers = 3

    public init(inputChannels: Int = 1, ndf: Int = 64, layers: Int = 3) {
        self.inputChannels = inputChannels
        self.ndf = ndf
        self.layers = layers
    }

    /// Documented limits, checked before any weight is allocated (the reference: ndf 64, 3 layers).
    public static let ndfRange = 1...256
    public static let layersRange = 1...8

    /// Throws a one-line `ConfigurationError` when a value is outside its documented limit.
    public func validate() throws {
        guard Self.ndfRange.contains(ndf) else { throw ConfigurationError("discriminator ndf is \(ndf), outside 1…256") }
        guard Self.layersRange.contains(layers) else {
            throw ConfigurationError("discriminator layers is \(layers), outside 1…8")
        }
        guard GeneratorConfiguration.channelRange.contains(inputChannels) else {
            throw ConfigurationError("discriminator input channels is \(inputChannels), outside 1…5")
        }
    }
}

/// A network as one `Sequential`, with its own workspace for training passes and a pool of (record, workspace)
/// pairs for inference, so that `infer` may be called from several threads at once.
open class SequentialNetwork: ParameterContainer, @unchecked Sendable {
    public let network: Sequential
    public let parameters: [Parameter]
    /// The network's buffers (BatchNorm running statistics), saved and loaded with the parameters.
    public let buffers: [Buffer]
    /// Scratch memory of `forward`/`backward` (not thread-safe: one training pass at a time).
    public let workspace = Workspace()
    private let poolLock = NSLock()
    private var inferencePool: [(LayerRecord, Workspace)] = []

    /// A network of `network`'s layers; other modules build their families on it (DCGAN, conditional GAN).
    public init(network: Sequential) {
        self.network = network
        parameters = network.parameters
        buffers = network.buffers
    }

    /// Training forward pass: saves in `record` what `backward` needs (one record per application).
    public func forward(_ input: Tensor, record: LayerRecord) -> Tensor {
        network.forward(input, record: record, mode: .training, workspace: workspace, consumeInput: false)
    }

    /// Backward pass of the application saved in `record`: dL/d(output) → dL/d(input), written to `gradInput`
    /// when given (nil: the input needs no gradient). Parameter gradients are accumulated when
    /// `parameterGradients` is true and untouched otherwise (a frozen network).
    public func backward(_ gradOutput: Tensor, record: LayerRecord, gradInput: Tensor? = nil, parameterGradients: Bool = true) {
        precondition(gradOutput.count == record.output!.count, "backward: gradient \(gradOutput.shape) for output \(record.output!.shape)")
        network.backward(UnsafePointer(gradOutput.pointer), gradInput: gradInput?.pointer, record: record,
                         parameterGradients: parameterGradients, workspace: workspace, depth: 0)
    }

    /// Inference (no recording, Dropout off): N × C × H × W → the network's output, a new tensor.
    public func infer(_ input: Tensor) -> Tensor {
        poolLock.lock()
        let (record, ws) = inferencePool.popLast() ?? (LayerRecord(), Workspace())
        poolLock.unlock()
        let output = network.forward(input, record: record, mode: .inference, workspace: ws, consumeInput: false).copy()
        poolLock.lock()
        inferencePool.append((record, ws))
        poolLock.unlock()
        return output
    }

    /// Sets how every convolution of the network computes (default `.automatic`); for comparisons and benchmarks.
    public func setConvolutionAlgorithm(_ algorithm: ConvolutionAlgorithm) {
        visitConvolutions { $0.algorithm = algorithm } transposed: { $0.algorithm = algorithm }
    }

    /// Sets the arithmetic of every convolution of the network (`Precision`; default `.f32`).
    public func setPrecision(_ precision: Precision) {
        visitConvolutions { $0.precision = precision } transposed: { $0.precision = precision }
    }

    private func visitConvolutions(_ conv: (Conv2d) -> Void, transposed: (ConvTranspose2d) -> Void) {
        func visit(_ layer: Layer) {
            switch layer {
            case let c as Conv2d: conv(c)
            case let t as ConvTranspose2d: transposed(t)
            case let sequential as Sequential: sequential.layers.forEach(visit)
            case let residual as ResidualBlock: visit(residual.block)
            default: break
            }
        }
        visit(network)
    }

    /// Frees the buffers kept for inference.
    public func releaseInferenceBuffers() {
        poolLock.lock()
        inferencePool.removeAll()
        poolLock.unlock()
    }

    /// Weights initialised per layer kind (`WeightInitializer`): as pytorch-CycleGAN-and-pix2pix
    /// `init_weights(init_type='normal', gain=0.02)` and examples/dcgan `weights_init` — convolution weights
    /// ~ N(0, 0.02), biases 0, normalisation scales ~ N(1, 0.02) and shifts 0; gradients zeroed.
    public func initializeWeights(seed: UInt64, gain: Double = 0.02) {
        var initializer = WeightInitializer(seed: seed, gain: gain)
        network.initializeWeights(&initializer)
        for p in parameters { p.gradient.fill(0) }
    }
}

/// The ResNet generator of CycleGAN (Zhu et al. 2017, after Johnson et al. 2016), layer for layer as
/// pytorch-CycleGAN-and-pix2pix `ResnetGenerator` with InstanceNorm (use_bias = True), reflection padding,
/// and PyTorch `state_dict` names: `model.1` (7×7), `model.4`, `model.7` (down), `model.10…` residual blocks
/// (`conv_block.1`, `conv_block.5`, or `.6` with dropout), two transposed convs, `model.(17+n)` (7×7) + tanh.
public final class ResnetGenerator: SequentialNetwork, @unchecked Sendable {
    public let configuration: GeneratorConfiguration

    public init(_ configuration: GeneratorConfiguration) {
        self.configuration = configuration
        let c = configuration, ngf = c.ngf
        var layers: [Layer] = [], consumes: [Bool] = []
        func add(_ l: Layer, consume: Bool = false) { layers.append(l); consumes.append(consume) }
        add(Conv2d(name: "model.1", inputChannels: c.inputChannels, outputChannels: ngf, kernelSize: 7, padding: 3, paddingMode: .reflect))
        add(InstanceNorm2d(name: "model.2", channels: ngf, activation: .relu), consume: true)
        var index = 4
        for i in 0..<2 {
            let m = 1 << i
            add(Conv2d(name: "model.\(index)", inputChannels: ngf * m, outputChannels: ngf * m * 2, kernelSize: 3, stride: 2, padding: 1))
            add(InstanceNorm2d(name: "model.\(index + 1)", channels: ngf * m * 2, activation: .relu), consume: true)
            index += 3
        }
        let dim = ngf * 4
        for b in 0..<c.residualBlocks {
            let prefix = "model.\(index).conv_block"
            var inner: [Layer] = [], innerConsumes: [Bool] = []
            inner.append(Conv2d(name: prefix + ".1", inputChannels: dim, outputChannels: dim, kernelSize: 3, padding: 1, paddingMode: .reflect))
            innerConsumes.append(false)
            inner.append(InstanceNorm2d(name: prefix + ".2", channels: dim, activation: .relu)); innerConsumes.append(true)
            var second = 5
            if c.dropout {
                inner.append(Dropout(probability: 0.5, seed: UInt64(b) &+ 0x5EED)); innerConsumes.append(false)
                second = 6
            }
            inner.append(Conv2d(name: prefix + ".\(second)", inputChannels: dim, outputChannels: dim, kernelSize: 3, padding: 1, paddingMode: .reflect))
            innerConsumes.append(false)
            inner.append(InstanceNorm2d(name: prefix + ".\(second + 1)", channels: dim)); innerConsumes.append(true)
            add(ResidualBlock(Sequential(inner, consumes: innerConsumes)))
            index += 1
        }
        for i in 0..<2 {
            let m = 1 << (2 - i)
            add(ConvTranspose2d(name: "model.\(index)", inputChannels: ngf * m, outputChannels: ngf * m / 2, kernelSize: 3,
                                stride: 2, padding: 1, outputPadding: 1))
            add(InstanceNorm2d(name: "model.\(index + 1)", channels: ngf * m / 2, activation: .relu), consume: true)
            index += 3
        }
        add(Conv2d(name: "model.\(index + 1)", inputChannels: ngf, outputChannels: c.outputChannels, kernelSize: 7, padding: 3, paddingMode: .reflect))
        add(Activation(.tanh), consume: true)
        super.init(network: Sequential(layers, consumes: consumes))
    }

    /// Sets the seeds of the Dropout layers (when the configuration has them).
    public func seedDropout(_ seed: UInt64) {
        var i: UInt64 = 0
        for case let block as ResidualBlock in network.layers {
            for case let d as Dropout in block.block.layers { d.random = SeededRandom(seed: seed, stream: i); i += 1 }
        }
    }
}

/// The PatchGAN discriminator of pix2pix/CycleGAN (Isola et al. 2017; 70×70 receptive field with 3 layers),
/// as pytorch-CycleGAN-and-pix2pix `NLayerDiscriminator` with InstanceNorm (use_bias = True) and LeakyReLU 0.2;
/// `state_dict` names `model.0`, `model.2`, `model.5`, `model.8`, `model.11` for 3 layers.
public final class NLayerDiscriminator: SequentialNetwork, @unchecked Sendable {
    public let configuration: DiscriminatorConfiguration

    public init(_ configuration: DiscriminatorConfiguration) {
        self.configuration = configuration
        let c = configuration, ndf = c.ndf
        var layers: [Layer] = [], consumes: [Bool] = []
        func add(_ l: Layer, consume: Bool = false) { layers.append(l); consumes.append(consume) }
        add(Conv2d(name: "model.0", inputChannels: c.inputChannels, outputChannels: ndf, kernelSize: 4, stride: 2, padding: 1))
        add(Activation(.leakyReLU(slope: 0.2)), consume: true)
        var index = 2, mult = 1
        for n in 1..<max(1, c.layers) where c.layers > 1 {
            let previous = mult
            mult = min(1 << n, 8)
            add(Conv2d(name: "model.\(index)", inputChannels: ndf * previous, outputChannels: ndf * mult, kernelSize: 4, stride: 2, padding: 1))
            add(InstanceNorm2d(name: "model.\(index + 1)", channels: ndf * mult, activation: .leakyReLU(slope: 0.2)), consume: true)
            index += 3
        }
        let previous = mult
        mult = min(1 << c.layers, 8)
        add(Conv2d(name: "model.\(index)", inputChannels: ndf * previous, outputChannels: ndf * mult, kernelSize: 4, stride: 1, padding: 1))
        add(InstanceNorm2d(name: "model.\(index + 1)", channels: ndf * mult, activation: .leakyReLU(slope: 0.2)), consume: true)
        index += 3
        add(Conv2d(name: "model.\(index)", inputChannels: ndf * mult, outputChannels: 1, kernelSize: 4, stride: 1, padding: 1))
        super.init(network: Sequential(layers, consumes: consumes))
    }
}
