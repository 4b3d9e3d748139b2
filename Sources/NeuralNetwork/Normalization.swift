import Foundation

/// An element-wise activation fused into a normalisation layer.
public enum FusedActivation: Sendable, Equatable {
    case none
    case relu
    case leakyReLU(slope: Float)
}

/// Instance normalisation (Ulyanov et al. 2016; PyTorch `nn.InstanceNorm2d`): each (sample, channel) plane is
/// normalised by its own mean and biased variance, eps 1e-5, no running statistics; optional affine γ, β;
/// optionally followed by a fused ReLU / LeakyReLU (forward and backward in one pass over the plane).
///
/// Saves x̂ (the normalised plane) and 1/σ per plane. Backward:
/// dx = (1/σ)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = γ·act'(y)·dy. In an inference record (`LayerRecord.isInference`)
/// there is no x̂: the output is computed from the input directly (the same operations, so the same values), in
/// place when the input may be consumed.
public final class InstanceNorm2d: Layer, ParameterContainer, OutputRecomputingLayer {
    public let channels: Int
    public let eps: Float
    public let activation: FusedActivation
    public let weight: Parameter?
    public let bias: Parameter?

    public init(name: String, channels: Int, eps: Float = 1e-5, affine: Bool = false, activation: FusedActivation = .none) {
        self.channels = channels
        self.eps = eps
        self.activation = activation
        weight = affine ? Parameter(name: name + ".weight", shape: [channels]) : nil
        bias = affine ? Parameter(name: name + ".bias", shape: [channels]) : nil
        weight?.value.fill(1)
    }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    public func outputShape(for s: [Int]) -> [Int] { s }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        precondition(input.shape.count == 4 && input.shape[1] == channels, "InstanceNorm2d: input \(input.shape)")
        record.input = input
        let planes = input.shape[0] * channels, size = input.shape[2] * input.shape[3]
        if record.isInference { return inferenceForward(input, record: record, consumeInput: consumeInput) }
        // x̂ may overwrite the input (a convolution's output that nothing else reads).
        let xhat: Tensor
        if consumeInput {
            if record.saved.isEmpty { record.saved.append(nil) }
            record.saved[0] = input
            xhat = input
        } else {
            xhat = record.savedTensor(0, shape: input.shape)
        }
        let rstd = record.savedTensor(1, shape: [planes])
        let identityOutput = activation == .none && weight == nil
        let output = identityOutput ? xhat : record.outputTensor(shape: input.shape)
        record.output = output
        let x = input.pointer, xh = xhat.pointer, y = output.pointer, rs = rstd.pointer
        let gamma = weight?.value.pointer, beta = bias?.value.pointer
        let eps = self.eps, activation = self.activation, channels = self.channels
        parallelFor(planes) { range in
            for p in range {
                let src = x + p * size, dst = xh + p * size, out = y + p * size
                let (mean, r) = InstanceNorm2d.statistics(src, size, eps: eps)
                rs[p] = r
                for i in 0..<size { dst[i] = (src[i] - mean) * r }
                if identityOutput { continue }
                // From x̂ itself: x̂ − 0 and · 1 are exact, so these are the inference pass's values.
                InstanceNorm2d.affineActivation(UnsafePointer(dst), mean: 0, rstd: 1, gamma: gamma.map { $0[p % channels] } ?? 1,
                                                beta: beta.map { $0[p % channels] } ?? 0, activation, out, size)
            }
        }
        return output
    }

    /// A training pass writes act(γ·x̂ + β) to a tensor of its own unless that is x̂ itself (no activation, no affine).
    package var canRecomputeOutput: Bool { !(activation == .none && weight == nil) }

    /// act(γ·x̂ + β) from the saved x̂, through the same `affineActivation` call as `forward`: the same bits.
    package func recomputeOutput(record: LayerRecord) {
        guard canRecomputeOutput, let xhat = record.saved.first ?? nil, let output = record.output else { return }
        let planes = xhat.shape[0] * channels, size = xhat.shape[2] * xhat.shape[3]
        let xh = xhat.pointer, y = output.pointer
        let gamma = weight?.value.pointer, beta = bias?.value.pointer
        let activation = self.activation, channels = self.channels
        parallelFor(planes) { range in
            for p in range {
                InstanceNorm2d.affineActivation(UnsafePointer(xh + p * size), mean: 0, rstd: 1,
                                                gamma: gamma.map { $0[p % channels] } ?? 1,
                                                beta: beta.map { $0[p % channels] } ?? 0, activation, y + p * size, size)
            }
        }
    }

    /// The forward pass of an inference record: y = act(γ·(x − μ)·(1/σ) + β) per plane, without x̂ (each value
    /// goes through the same float operations as `forward`'s x̂ and output loops, `affineActivation`), into the
    /// input itself when `consumeInput`.
    private func inferenceForward(_ input: Tensor, record: LayerRecord, consumeInput: Bool) -> Tensor {
        let planes = input.shape[0] * channels, size = input.shape[2] * input.shape[3]
        let output = consumeInput ? input : record.outputTensor(shape: input.shape)
        record.output = output
        let x = input.pointer, y = output.pointer
        let gamma = weight?.value.pointer, beta = bias?.value.pointer
        let eps = self.eps, activation = self.activation, channels = self.channels
        let identityOutput = activation == .none && weight == nil
        parallelFor(planes) { range in
            for p in range {
                let src = x + p * size, out = y + p * size
                let (mean, r) = InstanceNorm2d.statistics(src, size, eps: eps)
                if identityOutput {
                    for i in 0..<size { out[i] = (src[i] - mean) * r }
                    continue
                }
                InstanceNorm2d.affineActivation(src, mean: mean, rstd: r, gamma: gamma.map { $0[p % channels] } ?? 1,
                                                beta: beta.map { $0[p % channels] } ?? 0, activation, out, size)
            }
        }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        let input = record.input!
        let planes = input.shape[0] * channels, size = input.shape[2] * input.shape[3]
        let xh = record.saved[0]!.pointer, rs = record.saved[1]!.pointer
        let gamma = weight?.value.pointer
        let dgamma = parameterGradients ? weight?.gradient.pointer : nil
        let dbeta = parameterGradients ? bias?.gradient.pointer : nil
        let beta = bias?.value.pointer
        let activation = self.activation, channels = self.channels
        // Per-plane partial sums of the affine gradients, reduced serially afterwards (no races).
        let partial = workspace.buffer(Workspace.Slot.reduction, count: 2 * planes)
        parallelFor(planes) { range in
            for p in range {
                let g = gamma.map { $0[p % channels] } ?? 1, b = beta.map { $0[p % channels] } ?? 0
                let slope: Float
                switch activation {
                case .none: slope = 1
                case .relu: slope = 0
                case .leakyReLU(let s): slope = s
                }
                let sums = InstanceNorm2d.backwardPlane(xhat: xh + p * size, gradOutput: gradOutput + p * size,
                                                        gradInput: gradInput.map { $0 + p * size }, size: size,
                                                        gamma: g, beta: b, rstd: rs[p], slope: slope,
                                                        gated: activation != .none)
                partial[2 * p] = sums.0
                partial[2 * p + 1] = sums.1
            }
        }
        if let dgamma, let dbeta {
            for p in 0..<planes {
                dbeta[p % channels] += partial[2 * p]
                dgamma[p % channels] += partial[2 * p + 1]
            }
        }
    }
}

extension InstanceNorm2d {
    /// out[i] = act(γ·((src[i] − mean)·rstd) + β) for one plane of `size` values (`out` may be `src`).
    @inline(__always)
    static func affineActivation(_ src: UnsafePointer<Float>, mean: Float, rstd r: Float, gamma g: Float, beta b: Float,
                                 _ activation: FusedActivation, _ out: UnsafeMutablePointer<Float>, _ size: Int) {
        switch activation {
        case .none: for i in 0..<size { out[i] = g * ((src[i] - mean) * r) + b }
        case .relu: for i in 0..<size { out[i] = max(g * ((src[i] - mean) * r) + b, 0) }
        case .leakyReLU(let slope):
            for i in 0..<size { let v = g * ((src[i] - mean) * r) + b; out[i] = v > 0 ? v : v * slope }
        }
    }

    /// The mean and 1/σ (biased variance, `eps` added) of one plane of `size` values.
    @inline(__always)
    static func statistics(_ src: UnsafePointer<Float>, _ size: Int, eps: Float) -> (mean: Float, rstd: Float) {
        let mean = Float(Kernels.sum(src, size) / Double(size))
        let variance = Kernels.sumSquaredDeviations(src, size, mean: mean) / Double(size)
        return (mean, Float(1 / (variance + Double(eps)).squareRoot()))
    }

    /// One plane of the backward pass, 16 lanes at a time. d = act′(γx̂ + β)·dy (act′ = 1 above 0, `slope` below,
    /// unless not `gated`); returns (Σd, Σd·x̂) and writes dx = (1/σ)·γ·(d − mean(d) − x̂·mean(d·x̂)).
    @inline(__always)
    static func backwardPlane(xhat: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
                              gradInput: UnsafeMutablePointer<Float>?, size: Int, gamma: Float, beta: Float,
                              rstd: Float, slope: Float, gated: Bool) -> (Float, Float) {
        typealias V = SIMD16<Float>
        let vg = V(repeating: gamma), vb = V(repeating: beta), vs = V(repeating: slope), zero = V()
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        @inline(__always) func gate(_ x: V, _ dy: V) -> V {
            gated ? dy.replacing(with: dy * vs, where: (vg * x + vb) .<= zero) : dy
        }
        @inline(__always) func gate1(_ x: Float, _ dy: Float) -> Float {
            gated ? (gamma * x + beta > 0 ? dy : dy * slope) : dy
        }
        var sumD = 0.0, sumDX = 0.0
        var i = 0
        let vectorEnd = size & ~15
        while i < vectorEnd {
            let end = min(vectorEnd, i + 2048)
            var a = V(), bx = V()
            while i < end {
                let x = load(xhat + i), d = gate(x, load(gradOutput + i))
                a += d
                bx += d * x
                i += 16
            }
            sumD += Double(a.sum()); sumDX += Double(bx.sum())
        }
        while i < size { let d = gate1(xhat[i], gradOutput[i]); sumD += Double(d); sumDX += Double(d * xhat[i]); i += 1 }
        guard let dx = gradInput else { return (Float(sumD), Float(sumDX)) }
        let meanD = Float(sumD / Double(size)) * gamma, meanDX = Float(sumDX / Double(size)) * gamma
        let scale = rstd * gamma
        let vscale = V(repeating: scale), vr = V(repeating: rstd), vmd = V(repeating: meanD), vmdx = V(repeating: meanDX)
        i = 0
        while i < vectorEnd {
            let x = load(xhat + i), d = gate(x, load(gradOutput + i))
            let v = vscale * d - vr * (vmd + x * vmdx)
            UnsafeMutableRawPointer(dx + i).storeBytes(of: v, as: V.self)
            i += 16
        }
        while i < size { let d = gate1(xhat[i], gradOutput[i]); dx[i] = scale * d - rstd * (meanD + xhat[i] * meanDX); i += 1 }
        return (Float(sumD), Float(sumDX))
    }
}

/// Batch normalisation (Ioffe & Szegedy 2015; PyTorch `nn.BatchNorm2d`): per channel over N·H·W; in training the
/// batch mean and biased variance normalise, and the running statistics move by `momentum` (running variance
/// with the unbiased estimate); in inference the running statistics normalise. Affine γ, β (on by default).
/// An inference record (`LayerRecord.isInference`) keeps no x̂ and normalises in place when the input may be
/// consumed.
public final class BatchNorm2d: Layer, ParameterContainer {
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    public let weight: Parameter?
    public let bias: Parameter?
    public let runningMean: Tensor
    public let runningVariance: Tensor
    /// `num_batches_tracked`, a scalar (shape []).
    public let batchesTrackedTensor: Tensor
    /// The buffers `<name>.running_mean`, `<name>.running_var`, `<name>.num_batches_tracked`, as PyTorch names them.
    public let buffers: [Buffer]

    /// Training forward passes seen (PyTorch's `num_batches_tracked`).
    public var batchesTracked: Int { Int(batchesTrackedTensor.pointer[0]) }

    public init(name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) {
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        weight = affine ? Parameter(name: name + ".weight", shape: [channels]) : nil
        bias = affine ? Parameter(name: name + ".bias", shape: [channels]) : nil
        weight?.value.fill(1)
        runningMean = Tensor(shape: [channels])
        runningVariance = Tensor(shape: [channels])
        batchesTrackedTensor = Tensor(shape: [])
        buffers = [Buffer(name: name + ".running_mean", value: runningMean),
                   Buffer(name: name + ".running_var", value: runningVariance),
                   Buffer(name: name + ".num_batches_tracked", value: batchesTrackedTensor)]
        runningVariance.fill(1)
    }

    /// Running mean 0, running variance 1, no batches tracked (PyTorch's `reset_running_stats`).
    public func resetRunningStatistics() {
        runningMean.fill(0)
        runningVariance.fill(1)
        batchesTrackedTensor.fill(0)
    }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    public func outputShape(for s: [Int]) -> [Int] { s }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        precondition(input.shape.count == 4 && input.shape[1] == channels, "BatchNorm2d: input \(input.shape)")
        record.input = input
        let batch = input.shape[0], size = input.shape[2] * input.shape[3], count = batch * size
        // An inference record saves no x̂ (nil) and may write the output over the input.
        let inference = record.isInference
        let xhat = inference ? nil : record.savedTensor(0, shape: input.shape)
        let rstd = record.savedTensor(1, shape: [channels])
        let mode0 = record.savedTensor(2, shape: [1])
        mode0.pointer[0] = mode == .training ? 1 : 0
        let output = inference && consumeInput ? input : record.outputTensor(shape: input.shape)
        record.output = output
        let x = input.pointer, xh = xhat?.pointer, y = output.pointer, rs = rstd.pointer
        let rm = runningMean.pointer, rv = runningVariance.pointer
        let gamma = weight?.value.pointer, beta = bias?.value.pointer
        let eps = self.eps, momentum = self.momentum, channels = self.channels
        parallelFor(channels) { range in
            for c in range {
                var mean: Float, r: Float
                if mode == .training {
                    var s = 0.0
                    for n in 0..<batch { s += Kernels.sum(x + (n * channels + c) * size, size) }
                    mean = Float(s / Double(count))
                    var v = 0.0
                    for n in 0..<batch { v += Kernels.sumSquaredDeviations(x + (n * channels + c) * size, size, mean: mean) }
                    let biased = v / Double(count)
                    r = Float(1 / (biased + Double(eps)).squareRoot())
                    let unbiased = count > 1 ? v / Double(count - 1) : biased
                    rm[c] = (1 - momentum) * rm[c] + momentum * mean
                    rv[c] = (1 - momentum) * rv[c] + momentum * Float(unbiased)
                } else {
                    mean = rm[c]
                    r = 1 / (rv[c] + eps).squareRoot()
                }
                rs[c] = r
                let g = gamma.map { $0[c] } ?? 1, b = beta.map { $0[c] } ?? 0
                for n in 0..<batch {
                    let o = (n * channels + c) * size
                    if let xh {
                        for i in 0..<size {
                            let v = (x[o + i] - mean) * r
                            xh[o + i] = v
                            y[o + i] = g * v + b
                        }
                    } else {
                        for i in 0..<size { y[o + i] = g * ((x[o + i] - mean) * r) + b }
                    }
                }
            }
        }
        if mode == .training { batchesTrackedTensor.pointer[0] += 1 }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        let input = record.input!
        let batch = input.shape[0], size = input.shape[2] * input.shape[3], count = batch * size
        let xh = record.saved[0]!.pointer, rs = record.saved[1]!.pointer
        let training = record.saved[2]!.pointer[0] == 1
        let gamma = weight?.value.pointer
        let dgamma = parameterGradients ? weight?.gradient.pointer : nil
        let dbeta = parameterGradients ? bias?.gradient.pointer : nil
        let channels = self.channels
        parallelFor(channels) { range in
            for c in range {
                var sumD = 0.0, sumDX = 0.0
                for n in 0..<batch {
                    let o = (n * channels + c) * size
                    sumD += Kernels.sum(gradOutput + o, size)
                    sumDX += Kernels.dot(gradOutput + o, xh + o, size)
                }
                dbeta?[c] += Float(sumD)
                dgamma?[c] += Float(sumDX)
                guard let gradInput else { continue }
                let g = gamma.map { $0[c] } ?? 1, r = rs[c]
                let meanD = training ? Float(sumD / Double(count)) : 0
                let meanDX = training ? Float(sumDX / Double(count)) : 0
                for n in 0..<batch {
                    let o = (n * channels + c) * size
                    for i in 0..<size { gradInput[o + i] = g * r * (gradOutput[o + i] - meanD - xh[o + i] * meanDX) }
                }
            }
        }
    }
}
