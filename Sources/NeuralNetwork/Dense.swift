import Foundation

/// A fully connected layer (PyTorch `nn.Linear`): y = x·Wᵀ + b with W `outputFeatures × inputFeatures`.
/// The input is N × … with `inputFeatures` values per sample (an N × C × 1 × 1 tensor is taken as N × C), the
/// output N × `outputFeatures`. One GEMM each way: dx = dy·W, dW += dyᵀ·x, db += Σₙ dy.
public final class Linear: Layer, ParameterContainer {
    public let inputFeatures: Int
    public let outputFeatures: Int
    public let weight: Parameter
    public let bias: Parameter?

    /// `name` is the PyTorch module path; parameters are "<name>.weight" and "<name>.bias".
    public init(name: String, inputFeatures: Int, outputFeatures: Int, bias: Bool = true) {
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
        weight = Parameter(name: name + ".weight", shape: [outputFeatures, inputFeatures])
        self.bias = bias ? Parameter(name: name + ".bias", shape: [outputFeatures]) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }
    public func outputShape(for s: [Int]) -> [Int] { [s[0], outputFeatures] }

    public func initializeWeights(_ initializer: inout WeightInitializer) {
        initializer.weight(weight)
        initializer.zero(bias)
    }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        let batch = input.shape.first ?? 0
        precondition(batch > 0 && input.count == batch * inputFeatures,
                     "Linear(\(weight.name)): input \(input.shape), expected N×\(inputFeatures)")
        record.input = input
        let output = record.outputTensor(shape: [batch, outputFeatures])
        let y = output.pointer
        if let bias {
            for n in 0..<batch { (y + n * outputFeatures).update(from: bias.value.pointer, count: outputFeatures) }
        }
        BLAS.sgemm(transA: false, transB: true, m: batch, n: outputFeatures, k: inputFeatures,
                   a: input.pointer, lda: inputFeatures, b: weight.value.pointer, ldb: inputFeatures,
                   beta: bias == nil ? 0 : 1, c: y, ldc: outputFeatures)
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        let input = record.input!, batch = input.shape[0]
        if parameterGradients {
            BLAS.sgemm(transA: true, transB: false, m: outputFeatures, n: inputFeatures, k: batch,
                       a: gradOutput, lda: outputFeatures, b: input.pointer, ldb: inputFeatures,
                       beta: 1, c: weight.gradient.pointer, ldc: inputFeatures)
            if let bias { accumulateBiasGradient(gradOutput, into: bias.gradient.pointer, planes: batch,
                                                 channels: outputFeatures, planeSize: 1) }
        }
        if let gradInput {
            BLAS.sgemm(transA: false, transB: false, m: batch, n: inputFeatures, k: outputFeatures,
                       a: gradOutput, lda: outputFeatures, b: weight.value.pointer, ldb: inputFeatures,
                       beta: 0, c: gradInput, ldc: inputFeatures)
        }
    }
}

/// A lookup table (PyTorch `nn.Embedding`): row `i` of the `count × dimension` weight for each index `i`.
/// The input is a tensor of N class indices held as floats (exact integers), of shape [N] (or N × 1 × …), the
/// output N × `dimension`. Indices carry no gradient; backward adds each output row's gradient to its table row.
/// An index outside 0..<count is a programming error (the data loaders check labels before they get here).
public final class Embedding: Layer, ParameterContainer {
    public let count: Int
    public let dimension: Int
    public let weight: Parameter

    public init(name: String, count: Int, dimension: Int) {
        self.count = count
        self.dimension = dimension
        weight = Parameter(name: name + ".weight", shape: [count, dimension])
    }

    public var parameters: [Parameter] { [weight] }
    public func outputShape(for s: [Int]) -> [Int] { [s[0], dimension] }

    /// N(0, 1), PyTorch's `nn.Embedding` initialisation (the GAN `weights_init` functions leave embeddings alone).
    public func initializeWeights(_ initializer: inout WeightInitializer) {
        initializer.normal(weight.value, mean: 0, standardDeviation: 1)
    }

    /// The table row of `value`, checked.
    func row(_ value: Float) -> Int {
        let index = Int(exactly: value) ?? -1
        precondition(index >= 0 && index < count, "Embedding(\(weight.name)): index \(value) outside 0..<\(count)")
        return index
    }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        let batch = input.shape.first ?? 0
        precondition(batch > 0 && input.count == batch, "Embedding(\(weight.name)): input \(input.shape), expected N indices")
        record.input = input
        let output = record.outputTensor(shape: [batch, dimension])
        for n in 0..<batch {
            (output.pointer + n * dimension).update(from: weight.value.pointer + row(input.pointer[n]) * dimension, count: dimension)
        }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        let input = record.input!
        if let gradInput { gradInput.update(repeating: 0, count: input.count) }  // indices: no gradient
        guard parameterGradients else { return }
        let dw = weight.gradient.pointer
        for n in 0..<input.shape[0] {
            let r = row(input.pointer[n])
            for i in 0..<dimension { dw[r * dimension + i] += gradOutput[n * dimension + i] }
        }
    }
}

/// A view with another per-sample shape (PyTorch `x.view(N, *shape)`): N × … → N × `shape`, the same values in
/// the same order (the output shares the input's storage). Backward copies the gradient through.
public final class Reshape: Layer {
    /// The shape of one sample after the layer.
    public let shape: [Int]

    public init(_ shape: [Int]) { self.shape = shape }

    public var parameters: [Parameter] { [] }
    public func outputShape(for s: [Int]) -> [Int] { [s[0]] + shape }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        let batch = input.shape.first ?? 0
        precondition(input.count == batch * shape.reduce(1, *), "Reshape: input \(input.shape) into N×\(shape)")
        record.input = input
        let output = input.reshaped([batch] + shape)
        record.output = output
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        guard let gradInput else { return }
        let n = record.input!.count
        if UnsafePointer(gradInput) != gradOutput { gradInput.update(from: gradOutput, count: n) }
    }
}

/// Concatenation of two tensors along the channel axis (PyTorch `torch.cat([a, b], dim=1)`): N × Cₐ × … and
/// N × C_b × … (the same trailing sizes; 2-D N × C tensors count as N × C × 1 × 1) → N × (Cₐ + C_b) × ….
///
/// `Layer`s take one input, so this join is not one: composite networks (the conditional GAN's generator and
/// discriminator) call it between their `Sequential` chains, with its own `LayerRecord`. Backward splits the
/// gradient back into the two inputs' parts.
public final class ConcatChannels {
    public init() {}

    /// N, Cₐ, C_b and the per-channel size of two inputs, or a precondition failure when they do not fit.
    func layout(_ a: Tensor, _ b: Tensor) -> (batch: Int, ca: Int, cb: Int, plane: Int) {
        precondition(a.shape.count >= 2 && b.shape.count == a.shape.count && a.shape[0] == b.shape[0]
                     && Array(a.shape.dropFirst(2)) == Array(b.shape.dropFirst(2)),
                     "ConcatChannels: \(a.shape) and \(b.shape) differ outside the channel axis")
        return (a.shape[0], a.shape[1], b.shape[1], a.shape.dropFirst(2).reduce(1, *))
    }

    public func outputShape(_ a: [Int], _ b: [Int]) -> [Int] {
        var s = a
        s[1] += b[1]
        return s
    }

    public func forward(_ a: Tensor, _ b: Tensor, record: LayerRecord) -> Tensor {
        let l = layout(a, b)
        record.input = a
        if !record.isInference {  // backward's layout; an inference record keeps no tensor past its pass
            while record.saved.count < 1 { record.saved.append(nil) }
            record.saved[0] = b
        }
        let output = record.outputTensor(shape: outputShape(a.shape, b.shape))
        let sa = l.ca * l.plane, sb = l.cb * l.plane
        for n in 0..<l.batch {
            (output.pointer + n * (sa + sb)).update(from: a.pointer + n * sa, count: sa)
            (output.pointer + n * (sa + sb) + sa).update(from: b.pointer + n * sb, count: sb)
        }
        return output
    }

    /// dL/da and dL/db from dL/d(output); either may be nil (no gradient wanted).
    public func backward(_ gradOutput: UnsafePointer<Float>, gradA: UnsafeMutablePointer<Float>?,
                         gradB: UnsafeMutablePointer<Float>?, record: LayerRecord) {
        let l = layout(record.input!, record.saved[0]!)
        let sa = l.ca * l.plane, sb = l.cb * l.plane
        for n in 0..<l.batch {
            gradA?.advanced(by: n * sa).update(from: gradOutput + n * (sa + sb), count: sa)
            gradB?.advanced(by: n * sb).update(from: gradOutput + n * (sa + sb) + sa, count: sb)
        }
    }
}
