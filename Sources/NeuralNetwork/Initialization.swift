import Foundation
import MR2CTSupport

/// How a network's weights start, chosen per layer kind: each layer's `initializeWeights(_:)` asks the initializer
/// for its own tensors, in state_dict order, so the random draws follow the parameter order.
///
/// The scheme is the one pytorch-CycleGAN-and-pix2pix (`init_weights(init_type='normal', gain=0.02)`) and PyTorch's
/// examples/dcgan (`weights_init`) share (Radford et al. 2015, section 4): convolution, transposed-convolution and
/// linear weights ~ N(0, gain), their biases 0; normalisation scales ~ N(1, gain), shifts 0 (BatchNorm's running
/// statistics reset to mean 0, variance 1, no batches). Embedding tables ~ N(0, 1), PyTorch's `nn.Embedding`
/// default, which those `weights_init` functions leave alone.
public struct WeightInitializer: Sendable {
    public var random: SeededRandom
    /// The standard deviation of the N(0, gain) and N(1, gain) draws.
    public var gain: Double

    public init(seed: UInt64, gain: Double = 0.02) {
        random = SeededRandom(seed: seed)
        self.gain = gain
    }

    /// Fills `tensor` with N(mean, standardDeviation) deviates, element by element.
    public mutating func normal(_ tensor: Tensor, mean: Double, standardDeviation: Double) {
        let v = tensor.pointer
        for i in 0..<tensor.count { v[i] = Float(random.nextNormal(mean: mean, standardDeviation: standardDeviation)) }
    }

    /// A weight of a convolution or linear map: N(0, gain).
    public mutating func weight(_ p: Parameter) { normal(p.value, mean: 0, standardDeviation: gain) }

    /// A normalisation scale γ: N(1, gain).
    public mutating func scale(_ p: Parameter?) {
        if let p { normal(p.value, mean: 1, standardDeviation: gain) }
    }

    /// A bias or shift: 0 (no draw).
    public func zero(_ p: Parameter?) { p?.value.fill(0) }
}

extension Conv2d {
    public func initializeWeights(_ initializer: inout WeightInitializer) {
        initializer.weight(weight)
        initializer.zero(bias)
    }
}

extension ConvTranspose2d {
    public func initializeWeights(_ initializer: inout WeightInitializer) {
        initializer.weight(weight)
        initializer.zero(bias)
    }
}

extension InstanceNorm2d {
    public func initializeWeights(_ initializer: inout WeightInitializer) {
        initializer.scale(weight)
        initializer.zero(bias)
    }
}

extension BatchNorm2d {
    public func initializeWeights(_ initializer: inout WeightInitializer) {
        initializer.scale(weight)
        initializer.zero(bias)
        resetRunningStatistics()
    }
}
