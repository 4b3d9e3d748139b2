import Foundation
import MR2CTSupport

/// An element-wise activation layer (PyTorch `nn.ReLU`, `nn.LeakyReLU`, `nn.Tanh`, `nn.Sigmoid`). Saves its
/// output, from which each derivative follows: ReLU/LeakyReLU by the sign, tanh′ = 1 − y², σ′ = y(1 − y).
public final class Activation: Layer {
    public enum Kind: Sendable, Equatable {
        case relu
        case leakyReLU(slope: Float)
        case tanh
        case sigmoid
    }
    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    public var parameters: [Parameter] { [] }
    public func outputShape(for s: [Int]) -> [Int] { s }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        record.input = input
        let output = consumeInput ? input : record.outputTensor(shape: input.shape)
        record.output = output
        let x = input.pointer, y = output.pointer, kind = self.kind
        parallelFor(input.count, minimumPerThread: 16384) { range in
            switch kind {
            case .relu: for i in range { y[i] = max(x[i], 0) }
            case .leakyReLU(let slope): for i in range { y[i] = x[i] > 0 ? x[i] : x[i] * slope }
            case .tanh: for i in range { y[i] = Foundation.tanh(x[i]) }
            case .sigmoid: for i in range { y[i] = 1 / (1 + Foundation.exp(-x[i])) }
            }
        }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        guard let dx = gradInput else { return }
        let y = record.output!.pointer, kind = self.kind
        parallelFor(record.output!.count, minimumPerThread: 16384) { range in
            switch kind {
            case .relu: for i in range { dx[i] = y[i] > 0 ? gradOutput[i] : 0 }
            case .leakyReLU(let slope): for i in range { dx[i] = y[i] > 0 ? gradOutput[i] : gradOutput[i] * slope }
            case .tanh: for i in range { dx[i] = gradOutput[i] * (1 - y[i] * y[i]) }
            case .sigmoid: for i in range { dx[i] = gradOutput[i] * y[i] * (1 - y[i]) }
            }
        }
    }
}

/// Dropout (PyTorch `nn.Dropout`): in training each element is zeroed with probability `probability` and the
/// rest scaled by 1/(1 − p); in inference it is the identity. The mask comes from a seeded generator.
public final class Dropout: Layer {
    public let probability: Float
    public var random: SeededRandom

    public init(probability: Float = 0.5, seed: UInt64 = 0) {
        self.probability = probability
        random = SeededRandom(seed: seed)
    }

    public var parameters: [Parameter] { [] }
    public func outputShape(for s: [Int]) -> [Int] { s }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        record.input = input
        guard mode == .training, probability > 0 else {
            record.saved = []
            record.output = input
            return input
        }
        let mask = record.savedTensor(0, shape: input.shape)
        let output = record.outputTensor(shape: input.shape)
        let scale = probability < 1 ? 1 / (1 - probability) : 0
        let m = mask.pointer, x = input.pointer, y = output.pointer
        for i in 0..<input.count {
            m[i] = random.nextUnitFloat() < probability ? 0 : scale
            y[i] = x[i] * m[i]
        }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        guard let dx = gradInput else { return }
        let n = record.input!.count
        if record.saved.isEmpty {
            dx.update(from: gradOutput, count: n)
        } else {
            let m = record.saved[0]!.pointer
            for i in 0..<n { dx[i] = gradOutput[i] * m[i] }
        }
    }
}

/// Reflection padding (PyTorch `nn.ReflectionPad2d(p)`), as a layer of its own. The models fold it into the
/// following convolution's gather instead (`Conv2d(paddingMode: .reflect)`), which makes no padded copy.
public final class ReflectionPad2d: Layer {
    public let padding: Int
    public init(_ padding: Int) { self.padding = padding }
    public var parameters: [Parameter] { [] }
    public func outputShape(for s: [Int]) -> [Int] { [s[0], s[1], s[2] + 2 * padding, s[3] + 2 * padding] }

    func geometry(_ s: [Int]) -> ConvGeometry {
        ConvGeometry(channels: s[1], height: s[2], width: s[3], kernelHeight: 1, kernelWidth: 1, stride: 1,
                     padding: padding, paddingMode: .reflect, outputHeight: s[2] + 2 * padding, outputWidth: s[3] + 2 * padding)
    }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        record.input = input
        let output = record.outputTensor(shape: outputShape(for: input.shape))
        let g = geometry(input.shape), inCount = input.count / input.shape[0], outCount = output.count / input.shape[0]
        for n in 0..<input.shape[0] { g.pad(input.pointer + n * inCount, into: output.pointer + n * outCount) }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        guard let dx = gradInput else { return }
        let input = record.input!
        let g = geometry(input.shape), inCount = input.count / input.shape[0], outCount = record.output!.count / input.shape[0]
        for n in 0..<input.shape[0] { g.unpad(gradOutput + n * outCount, into: dx + n * inCount) }
    }
}

/// Layers applied in order. Backward passes gradients through two ping-pong workspace buffers per nesting depth.
public final class Sequential: Layer {
    public let layers: [Layer]
    /// For each layer, whether it may overwrite its input (its producer's output is not needed again).
    let consumes: [Bool]

    /// For each layer, the layer itself when a training pass keeps its output in the workspace's shared activation
    /// buffer and rebuilds it before the next layer's backward pass (`OutputRecomputingLayer`), else nil.
    let sharedOutputLayers: [OutputRecomputingLayer?]

    public init(_ layers: [Layer], consumes: [Bool]? = nil) {
        self.layers = layers
        let consumes = consumes ?? Array(repeating: false, count: layers.count)
        self.consumes = consumes
        sharedOutputLayers = layers.indices.map { i in
            guard i + 1 < layers.count, let layer = layers[i] as? OutputRecomputingLayer, layer.canRecomputeOutput,
                  layers[i + 1] is SharedActivationReader, !consumes[i + 1] else { return nil }
            return layer
        }
    }

    public var parameters: [Parameter] { layers.flatMap { $0.parameters } }
    public var buffers: [Buffer] { layers.flatMap { $0.buffers } }

    /// Each layer in order, so the random draws follow the parameters' state_dict order.
    public func initializeWeights(_ initializer: inout WeightInitializer) {
        for layer in layers { layer.initializeWeights(&initializer) }
    }

    public func outputShape(for s: [Int]) -> [Int] { layers.reduce(s) { $1.outputShape(for: $0) } }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        record.input = input
        var x = input
        for (i, layer) in layers.enumerated() {
            // In an inference record a layer may overwrite any intermediate of this chain (nothing reads it
            // afterwards) and the intermediate is given back once read; the chain's input belongs to the caller.
            let intermediate = i > 0 && x.pointer != input.pointer
            let consume = i == 0 ? consumeInput && consumes[0] : consumes[i] || (record.isInference && intermediate)
            let child = record.child(i)
            if sharedOutputLayers[i] != nil && !record.isInference {
                child.sharedOutput = workspace.sharedActivation(shape: layer.outputShape(for: x.shape))
            }
            let y = layer.forward(x, record: child, mode: mode, workspace: workspace, consumeInput: consume)
            if intermediate { record.release(x, keeping: y) }
            x = y
        }
        record.output = x
        return x
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        var g = gradOutput
        for i in layers.indices.reversed() {
            let child = record.children[i]
            let dst: UnsafeMutablePointer<Float>?
            if i == 0 {
                dst = gradInput
            } else {
                dst = workspace.buffer(Workspace.Slot.gradient(depth: depth, parity: i & 1), count: child.input!.count)
            }
            // This layer's input, kept in the shared activation buffer, is rebuilt first.
            if i > 0, let producer = sharedOutputLayers[i - 1], record.children[i - 1].outputIsShared {
                producer.recomputeOutput(record: record.children[i - 1])
            }
            layers[i].backward(g, gradInput: dst, record: child, parameterGradients: parameterGradients,
                               workspace: workspace, depth: depth)
            if let dst { g = UnsafePointer(dst) }
        }
    }
}

/// out = x + block(x) (the ResNet skip connection, He et al. 2016).
public final class ResidualBlock: Layer {
    public let block: Sequential
    public init(_ block: Sequential) { self.block = block }
    public var parameters: [Parameter] { block.parameters }
    public var buffers: [Buffer] { block.buffers }
    public func initializeWeights(_ initializer: inout WeightInitializer) { block.initializeWeights(&initializer) }
    public func outputShape(for s: [Int]) -> [Int] { s }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        record.input = input
        let branch = block.forward(input, record: record.child(0), mode: mode, workspace: workspace, consumeInput: false)
        let output = record.outputTensor(shape: input.shape)
        let x = input.pointer, b = branch.pointer, y = output.pointer
        parallelFor(input.count, minimumPerThread: 16384) { range in for i in range { y[i] = x[i] + b[i] } }
        // The input stays (it is the caller's); the branch is dead once added.
        if branch.pointer != input.pointer { record.release(branch, keeping: output) }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        block.backward(gradOutput, gradInput: gradInput, record: record.children[0],
                       parameterGradients: parameterGradients, workspace: workspace, depth: depth + 1)
        guard let dx = gradInput else { return }
        parallelFor(record.input!.count, minimumPerThread: 16384) { range in for i in range { dx[i] += gradOutput[i] } }
    }
}
