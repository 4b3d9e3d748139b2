import Foundation

/// Adam (Kingma & Ba 2015) with PyTorch's `torch.optim.Adam` semantics (no weight decay, no amsgrad):
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
public final class Adam: @unchecked Sendable {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let eps: Float
    /// Steps taken (t); restored from checkpoints together with `moments`.
    public var stepCount: Int = 0
    private let first: [Tensor]
    private let second: [Tensor]
    /// β₁ and β₂ as the decimals they were written as (PyTorch's betas are Python floats, i.e. doubles: 1 − β₂ must
    /// be 1e-3, not 1 − Float(0.999) = 1.0000467e-3).
    private let beta1Decimal: Double
    private let beta2Decimal: Double

    public init(parameters: [Parameter], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        beta1Decimal = Double("\(beta1)") ?? Double(beta1)
        beta2Decimal = Double("\(beta2)") ?? Double(beta2)
        first = parameters.map { Tensor(shape: $0.value.shape) }
        second = parameters.map { Tensor(shape: $0.value.shape) }
    }

    /// Per parameter, the first and second moment estimates (exp_avg, exp_avg_sq), for checkpoints.
    public var moments: [(first: Tensor, second: Tensor)] { Array(zip(first, second)) }

    /// Sets every parameter gradient to zero.
    public func zeroGradients() { for p in parameters { p.gradient.fill(0) } }

    /// Averages the gradients over data-parallel replicas before each step (nil: one process). Set by the training
    /// loop when it runs under MPI.
    public var gradientReducer: (any GradientReducer)?

    /// One update of every parameter from its gradient.
    public func step() { beginStep().finish() }

    /// Starts a step: hands the gradients to `gradientReducer` (which may average them in the background while
    /// the caller computes something that touches neither these parameters nor their gradients); `finish()` waits
    /// for the reduction and updates. Without a reducer `finish()` is `step()` as before.
    public func beginStep() -> PendingAdamStep {
        PendingAdamStep(adam: self, reduction: gradientReducer?.beginReduction(parameters.map(\.gradient)))
    }

    /// The update from the (reduced) gradients.
    fileprivate func update() {
        stepCount += 1
        let t = Double(stepCount)
        let bc1 = 1 - Foundation.pow(beta1Decimal, t), bc2 = 1 - Foundation.pow(beta2Decimal, t)
        let stepSize = Float(Double(learningRate) / bc1)
        let bc2sqrt = Float(bc2.squareRoot())
        let b1 = beta1, b2 = beta2, eps = self.eps
        let oneMinusB1 = Float(1 - beta1Decimal), oneMinusB2 = Float(1 - beta2Decimal)
        for (index, p) in parameters.enumerated() {
            let w = p.value.pointer, g = p.gradient.pointer, m = first[index].pointer, v = second[index].pointer
            parallelFor(p.value.count, minimumPerThread: 65536) { range in
                for i in range {
                    let gi = g[i]
                    m[i] = b1 * m[i] + oneMinusB1 * gi
                    v[i] = b2 * v[i] + oneMinusB2 * gi * gi
                    let denom = v[i].squareRoot() / bc2sqrt + eps
                    w[i] -= stepSize * m[i] / denom
                }
            }
        }
    }
}

/// Averages gradient buffers over data-parallel replicas (DataParallel's MPI all-reduce), so that every replica
/// applies the same update.
public protocol GradientReducer: AnyObject, Sendable {
    /// Starts averaging `gradients` in place; the returned reduction's `wait()` returns when they hold the average.
    func beginReduction(_ gradients: [Tensor]) -> PendingReduction
}

/// A reduction under way.
public struct PendingReduction: Sendable {
    private let waitBody: @Sendable () -> Void
    public init(wait: @escaping @Sendable () -> Void) { waitBody = wait }
    public func wait() { waitBody() }
}

/// An Adam step whose gradients are being reduced (`Adam.beginStep()`); `finish()` applies it, once.
public struct PendingAdamStep {
    let adam: Adam
    let reduction: PendingReduction?

    public func finish() {
        reduction?.wait()
        adam.update()
    }
}
