import Foundation

/// Losses with PyTorch's mean reduction. Each returns the loss value and, when `gradient` is given, writes
/// `scale` × dLoss/dPrediction into it (overwriting, or adding when `accumulate` is true).
public enum Loss {
    /// `nn.MSELoss`: mean((x − t)²) against a constant target (LSGAN: 1 for real, 0 for fake).
    public static func meanSquaredError(_ prediction: Tensor, target: Float, scale: Float = 1,
                                        gradient: Tensor? = nil, accumulate: Bool = false) -> Float {
        elementwise(prediction, target: nil, constant: target, scale: scale, gradient: gradient, accumulate: accumulate) { x, t in
            let d = Double(x - t)
            return (d * d, 2 * (x - t))
        }
    }

    /// `nn.MSELoss` against a tensor target.
    public static func meanSquaredError(_ prediction: Tensor, target: Tensor, scale: Float = 1,
                                        gradient: Tensor? = nil, accumulate: Bool = false) -> Float {
        elementwise(prediction, target: target, constant: 0, scale: scale, gradient: gradient, accumulate: accumulate) { x, t in
            let d = Double(x - t)
            return (d * d, 2 * (x - t))
        }
    }

    /// `nn.L1Loss`: mean(|x − t|); the derivative at x = t is 0 as in PyTorch (sign(0) = 0).
    public static func l1(_ prediction: Tensor, target: Tensor, scale: Float = 1,
                          gradient: Tensor? = nil, accumulate: Bool = false) -> Float {
        elementwise(prediction, target: target, constant: 0, scale: scale, gradient: gradient, accumulate: accumulate) { x, t in
            let d = x - t
            return (Double(abs(d)), d > 0 ? 1 : (d < 0 ? -1 : 0))
        }
    }

    /// scale · mean |x − t| over the elements where `mask` is 1 (all elements when it is nil), the supervised L1
    /// of pix2pix (`--l1-in-body`) and of semi-supervised CycleGAN training; adds scale · d/dx into `gradient`
    /// (sign(0) = 0 as in PyTorch; elements outside the mask get nothing). An empty mask gives 0.
    public static func l1(_ prediction: Tensor, target: Tensor, mask: [Float]?, scale: Float, accumulatingInto gradient: Tensor) -> Float {
        let n = prediction.count
        precondition(target.count == n && gradient.count == n && (mask?.count ?? n) == n,
                     "Loss: target \(target.shape), gradient \(gradient.shape), mask \(mask?.count ?? n) for prediction \(prediction.shape)")
        let x = prediction.pointer, t = target.pointer, g = gradient.pointer
        func sum(_ m: UnsafeBufferPointer<Float>?) -> Float {
            let count = m.map { $0.reduce(0, +) } ?? Float(n)
            guard count > 0 else { return 0 }
            let step = scale / count
            var total = 0.0
            for i in 0..<n {
                if let m, m[i] == 0 { continue }
                let d = x[i] - t[i]
                total += Double(abs(d))
                g[i] += d > 0 ? step : (d < 0 ? -step : 0)
            }
            return Float(Double(scale) * total / Double(count))
        }
        guard let mask else { return sum(nil) }
        return mask.withUnsafeBufferPointer { sum($0) }
    }

    /// `nn.BCEWithLogitsLoss`: mean(max(x, 0) − x·t + log(1 + e^(−|x|))), gradient (σ(x) − t)/n.
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, target: Float, scale: Float = 1,
                                                    gradient: Tensor? = nil, accumulate: Bool = false) -> Float {
        elementwise(logits, target: nil, constant: target, scale: scale, gradient: gradient, accumulate: accumulate, bce)
    }

    /// `nn.BCEWithLogitsLoss` against a tensor of targets in [0, 1].
    public static func binaryCrossEntropyWithLogits(_ logits: Tensor, target: Tensor, scale: Float = 1,
                                                    gradient: Tensor? = nil, accumulate: Bool = false) -> Float {
        elementwise(logits, target: target, constant: 0, scale: scale, gradient: gradient, accumulate: accumulate, bce)
    }

    @inline(__always)
    private static func bce(_ x: Float, _ t: Float) -> (Double, Float) {
        let xd = Double(x), td = Double(t)
        let value = max(xd, 0) - xd * td + Foundation.log1p(Foundation.exp(-abs(xd)))
        let sigmoid = 1 / (1 + Foundation.exp(-xd))
        return (value, Float(sigmoid - td))
    }

    @inline(__always)
    private static func elementwise(_ prediction: Tensor, target: Tensor?, constant: Float, scale: Float,
                                    gradient: Tensor?, accumulate: Bool,
                                    _ f: (Float, Float) -> (Double, Float)) -> Float {
        let n = prediction.count
        if let target { precondition(target.count == n, "Loss: target \(target.shape) for prediction \(prediction.shape)") }
        if let gradient { precondition(gradient.count == n, "Loss: gradient \(gradient.shape) for prediction \(prediction.shape)") }
        let x = prediction.pointer, t = target?.pointer, g = gradient?.pointer
        let gscale = scale / Float(n)
        var total = 0.0
        for i in 0..<n {
            let (v, d) = f(x[i], t?[i] ?? constant)
            total += v
            if let g { if accumulate { g[i] += gscale * d } else { g[i] = gscale * d } }
        }
        return Float(total / Double(n)) * scale
    }
}
