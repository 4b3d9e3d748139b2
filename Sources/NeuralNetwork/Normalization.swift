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
/// dx = (1/σ)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = γ·act'(y)·dy.
public final class InstanceNorm2d: Layer, ParameterContainer {
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
                let mean = Float(Kernels.sum(src, size) / Double(size))
                let variance = Kernels.sumSquaredDeviations(src, size, mean: mean) / Double(size)
                let r = Float(1 / (variance + Double(eps)).squareRoot())
                rs[p] = r
                for i in 0..<size { dst[i] = (src[i] - mean) * r }
                if identityOutput { continue }
                let g = gamma.map { $0[p % channels] } ?? 1, b = beta.map { $0[p % channels] } ?? 0
                switch activation {
                case .none: for i in 0..<size { out[i] = g * dst[i] + b }
                case .relu: for i in 0..<size { out[i] = max(g * dst[i] + b, 0) }
                case .leakyReLU(let slope):
                    for i in 0..<size { let v = g * dst[i] + b; out[i] = v > 0 ? v : v * slope }
                }
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
                let xp = xh + p * size, dy = gradOutput + p * size
                let g = gamma.map { $0[p % channels] } ?? 1, b = beta.map { $0[p % channels] } ?? 0
                // Σ dŷ (pre-affine output gradient) and Σ dŷ·x̂ where dŷ = act'·dy.
                var sumD = 0.0, sumDX = 0.0
                var i = 0
                while i < size {
                    let end = min(size, i + 1024)
                    var a = Float(0), bx = Float(0)
                    switch activation {
                    case .none:
                        for j in i..<end { a += dy[j]; bx += dy[j] * xp[j] }
                    case .relu:
                        for j in i..<end { let d = g * xp[j] + b > 0 ? dy[j] : 0; a += d; bx += d * xp[j] }
                    case .leakyReLU(let slope):
                        for j in i..<end { let d = g * xp[j] + b > 0 ? dy[j] : dy[j] * slope; a += d; bx += d * xp[j] }
                    }
                    sumD += Double(a); sumDX += Double(bx)
                    i = end
                }
                partial[2 * p] = Float(sumD)
                partial[2 * p + 1] = Float(sumDX)
                guard let gradInput else { continue }
                let dx = gradInput + p * size
                let r = rs[p]
                let meanD = Float(sumD / Double(size)) * g, meanDX = Float(sumDX / Double(size)) * g
                let scale = r * g
                switch activation {
                case .none:
                    for j in 0..<size { dx[j] = scale * dy[j] - r * (meanD + xp[j] * meanDX) }
                case .relu:
                    for j in 0..<size {
                        let d = g * xp[j] + b > 0 ? dy[j] : 0
                        dx[j] = scale * d - r * (meanD + xp[j] * meanDX)
                    }
                case .leakyReLU(let slope):
                    for j in 0..<size {
                        let d = g * xp[j] + b > 0 ? dy[j] : dy[j] * slope
                        dx[j] = scale * d - r * (meanD + xp[j] * meanDX)
                    }
                }
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

/// Batch normalisation (Ioffe & Szegedy 2015; PyTorch `nn.BatchNorm2d`): per channel over N·H·W; in training the
/// batch mean and biased variance normalise, and the running statistics move by `momentum` (running variance
/// with the unbiased estimate); in inference the running statistics normalise. Affine γ, β (on by default).
public final class BatchNorm2d: Layer, ParameterContainer {
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    public let weight: Parameter?
    public let bias: Parameter?
    public let runningMean: Tensor
    public let runningVariance: Tensor
    public private(set) var batchesTracked = 0

    public init(name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) {
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        weight = affine ? Parameter(name: name + ".weight", shape: [channels]) : nil
        bias = affine ? Parameter(name: name + ".bias", shape: [channels]) : nil
        weight?.value.fill(1)
        runningMean = Tensor(shape: [channels])
        runningVariance = Tensor(shape: [channels])
        runningVariance.fill(1)
    }

    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    public func outputShape(for s: [Int]) -> [Int] { s }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        precondition(input.shape.count == 4 && input.shape[1] == channels, "BatchNorm2d: input \(input.shape)")
        record.input = input
        let batch = input.shape[0], size = input.shape[2] * input.shape[3], count = batch * size
        let xhat = record.savedTensor(0, shape: input.shape)
        let rstd = record.savedTensor(1, shape: [channels])
        let mode0 = record.savedTensor(2, shape: [1])
        mode0.pointer[0] = mode == .training ? 1 : 0
        let output = record.outputTensor(shape: input.shape)
        let x = input.pointer, xh = xhat.pointer, y = output.pointer, rs = rstd.pointer
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
                    for i in 0..<size {
                        let v = (x[o + i] - mean) * r
                        xh[o + i] = v
                        y[o + i] = g * v + b
                    }
                }
            }
        }
        if mode == .training { batchesTracked += 1 }
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
