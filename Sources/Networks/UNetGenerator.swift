import Foundation
import NeuralNetwork
import MR2CTSupport

/// The normalisation layer of the pix2pix networks (pytorch-CycleGAN-and-pix2pix `get_norm_layer`): `batch` is
/// pix2pix's default (`BatchNorm2d` with affine γ, β and running statistics; convolutions before it have no bias),
/// `instance` CycleGAN's (`InstanceNorm2d` without affine parameters; convolutions keep their bias).
public enum NormalizationKind: String, Codable, Sendable, CaseIterable {
    case batch
    case instance
}

/// Options of the U-Net generator of pix2pix (Isola et al. 2017; pytorch-CycleGAN-and-pix2pix `UnetGenerator`):
/// `downsamplings` stride-2 stages (`num_downs`: 7 for `unet_128`, 8 for `unet_256`), so an image side must be a
/// multiple of 2^downsamplings (the bottleneck is 1 × 1 for a 128 or 256 image).
public struct UNetConfiguration: Codable, Sendable, Hashable {
    public var inputChannels = 1
    public var outputChannels = 1
    public var ngf = 64
    public var downsamplings = 8
    /// Dropout 0.5 in the `downsamplings − 5` innermost non-innermost blocks (pix2pix trains with it: `--no_dropout`
    /// is off by default).
    public var dropout = true
    public var norm: NormalizationKind = .batch

    public init(inputChannels: Int = 1, outputChannels: Int = 1, ngf: Int = 64, downsamplings: Int = 8,
                dropout: Bool = true, norm: NormalizationKind = .batch) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.ngf = ngf
        self.downsamplings = downsamplings
        self.dropout = dropout
        self.norm = norm
    }

    /// Documented limits, checked before any weight is allocated: the reference's structure needs at least 5
    /// stages (innermost, three widening blocks, outermost); 9 stages is a 512 image at a 1 × 1 bottleneck.
    public static let downsamplingsRange = 5...9
    public static let ngfRange = 1...128

    /// An image side the network takes: a multiple of 2^downsamplings.
    public var sizeMultiple: Int { 1 << downsamplings }

    public func validate() throws {
        guard Self.downsamplingsRange.contains(downsamplings) else {
            throw ConfigurationError("U-Net downsamplings is \(downsamplings), outside 5…9")
        }
        guard Self.ngfRange.contains(ngf) else { throw ConfigurationError("U-Net ngf is \(ngf), outside 1…128") }
        for (value, name) in [(inputChannels, "input channels"), (outputChannels, "output channels")]
        where !GeneratorConfiguration.channelRange.contains(value) {
            throw ConfigurationError("U-Net \(name) is \(value), outside 1…5")
        }
    }
}

/// The skip connection of a U-Net block: out = cat([x, inner(x)], channels) (Ronneberger et al. 2015).
public final class ChannelConcatSkip: Layer {
    public let inner: Sequential
    public init(_ inner: Sequential) { self.inner = inner }
    public var parameters: [Parameter] { inner.parameters }
    public var buffers: [Buffer] { inner.buffers }
    public func initializeWeights(_ initializer: inout WeightInitializer) { inner.initializeWeights(&initializer) }

    public func outputShape(for s: [Int]) -> [Int] {
        let i = inner.outputShape(for: s)
        return [s[0], s[1] + i[1], s[2], s[3]]
    }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        record.input = input
        let branch = inner.forward(input, record: record.child(0), mode: mode, workspace: workspace, consumeInput: false)
        let n = input.shape[0], a = input.count / n, b = branch.count / n
        precondition(branch.shape[2] == input.shape[2] && branch.shape[3] == input.shape[3],
                     "U-Net skip: inner output \(branch.shape) for input \(input.shape)")
        let output = record.outputTensor(shape: [n, input.shape[1] + branch.shape[1], input.shape[2], input.shape[3]])
        let x = input.pointer, y = branch.pointer, o = output.pointer
        for i in 0..<n {
            (o + i * (a + b)).update(from: x + i * a, count: a)
            (o + i * (a + b) + a).update(from: y + i * b, count: b)
        }
        // In an inference pass the branch is dead once concatenated (the input is the caller's).
        if branch.pointer != input.pointer { record.release(branch, keeping: output) }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        let input = record.input!, child = record.children[0], branch = child.output!
        let n = input.shape[0], a = input.count / n, b = branch.count / n
        // The branch's part of the gradient, gathered into one contiguous tensor.
        let gradBranch = record.savedTensor(0, shape: branch.shape)
        let g = gradBranch.pointer
        for i in 0..<n { (g + i * b).update(from: gradOutput + i * (a + b) + a, count: b) }
        inner.backward(UnsafePointer(g), gradInput: gradInput, record: child, parameterGradients: parameterGradients,
                       workspace: workspace, depth: depth + 1)
        guard let dx = gradInput else { return }
        for i in 0..<n {
            let d = dx + i * a, s = gradOutput + i * (a + b)
            for j in 0..<a { d[j] += s[j] }
        }
    }
}

/// The U-Net generator of pix2pix, layer for layer as pytorch-CycleGAN-and-pix2pix `UnetGenerator` built from
/// nested `UnetSkipConnectionBlock`s, with its `state_dict` names: the outermost block is `model`, each block's
/// layers `<block>.model.<i>`, so the outermost down-convolution is `model.model.0`, the next block
/// `model.model.1` (its down-convolution `model.model.1.model.1`, norm `.2`, inner block `.3` =
/// `model.model.1.model.3`, up-convolution `.5`, norm `.6`), the innermost block's `.model.1` / `.3` / `.4`, the
/// outermost up-convolution `model.model.3`.
///
/// Every block but the outermost starts with LeakyReLU(0.2) applied in place (`nn.LeakyReLU(0.2, True)`), so the
/// tensor its skip connection concatenates is the activated input: cat([lrelu(x), inner(lrelu(x))]). Here that is
/// the activation followed by a `ChannelConcatSkip` in the parent's layer list, which computes the same function.
/// Convolutions are 4 × 4, stride 2, padding 1; up-convolutions transposed 4 × 4; ReLU before each up-convolution;
/// tanh at the end; with batch normalisation every convolution but the outermost up-convolution has no bias.
public final class UNetGenerator: SequentialNetwork, @unchecked Sendable {
    public let configuration: UNetConfiguration

    public init(_ configuration: UNetConfiguration) {
        self.configuration = configuration
        let c = configuration, ngf = c.ngf
        let useBias = c.norm == .instance
        func norm(_ name: String, _ channels: Int) -> Layer {
            switch c.norm {
            case .batch: BatchNorm2d(name: name, channels: channels)
            case .instance: InstanceNorm2d(name: name, channels: channels)
            }
        }
        // Blocks from the innermost outward: (outer channels, inner channels, dropout).
        var specs: [(outer: Int, inner: Int, dropout: Bool)] = [(ngf * 8, ngf * 8, false)]
        for _ in 0..<max(0, c.downsamplings - 5) { specs.append((ngf * 8, ngf * 8, c.dropout)) }
        specs += [(ngf * 4, ngf * 8, false), (ngf * 2, ngf * 4, false), (ngf, ngf * 2, false)]
        // The module path of each block: the outermost is "model", the one inside it "model.model.1" (index 1 of
        // the outermost's layers), each further one index 3 of its parent's layers: "model.model.1.model.3", …
        let depth = specs.count
        func prefix(_ level: Int) -> String {  // level 0 = just inside the outermost block
            "model.model.1" + String(repeating: ".model.3", count: level)
        }
        // Each block enters its parent's layer list as two layers, the in-place LeakyReLU and the skip (no Sequential
        // directly inside a Sequential: nested Sequentials at one depth would share gradient buffers).
        var block: [Layer]? = nil
        for (k, spec) in specs.enumerated() {
            let p = prefix(depth - 1 - k)
            var layers: [Layer] = [Conv2d(name: p + ".model.1", inputChannels: spec.outer, outputChannels: spec.inner,
                                          kernelSize: 4, stride: 2, padding: 1, bias: useBias)]
            if let inner = block {
                layers.append(norm(p + ".model.2", spec.inner))
                layers += inner
                layers.append(Activation(.relu))
                layers.append(ConvTranspose2d(name: p + ".model.5", inputChannels: spec.inner * 2, outputChannels: spec.outer,
                                              kernelSize: 4, stride: 2, padding: 1, bias: useBias))
                layers.append(norm(p + ".model.6", spec.outer))
                if spec.dropout { layers.append(Dropout(probability: 0.5)) }
            } else {
                layers.append(Activation(.relu))
                layers.append(ConvTranspose2d(name: p + ".model.3", inputChannels: spec.inner, outputChannels: spec.outer,
                                              kernelSize: 4, stride: 2, padding: 1, bias: useBias))
                layers.append(norm(p + ".model.4", spec.outer))
            }
            block = [Activation(.leakyReLU(slope: 0.2)), ChannelConcatSkip(Sequential(layers))]
        }
        let outermost: [Layer] = [
            Conv2d(name: "model.model.0", inputChannels: c.inputChannels, outputChannels: ngf, kernelSize: 4, stride: 2,
                   padding: 1, bias: useBias),
        ] + block! + [
            Activation(.relu),
            ConvTranspose2d(name: "model.model.3", inputChannels: ngf * 2, outputChannels: c.outputChannels, kernelSize: 4,
                            stride: 2, padding: 1),
            Activation(.tanh),
        ]
        super.init(network: Sequential(outermost))
    }

    /// Seeds the Dropout layers (one stream each).
    public func seedDropout(_ seed: UInt64) {
        for (i, d) in dropoutLayers.enumerated() { d.random = SeededRandom(seed: seed, stream: UInt64(i)) }
    }
}

extension SequentialNetwork {
    /// The network's Dropout layers in forward order (inside `Sequential`s, residual blocks and U-Net skips).
    public var dropoutLayers: [Dropout] {
        var found: [Dropout] = []
        func visit(_ layer: Layer) {
            switch layer {
            case let d as Dropout: found.append(d)
            case let s as Sequential: s.layers.forEach(visit)
            case let r as ResidualBlock: visit(r.block)
            case let skip as ChannelConcatSkip: visit(skip.inner)
            default: break
            }
        }
        visit(network)
        return found
    }
}
