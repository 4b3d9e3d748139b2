/// A run's length and learning rate: `totalIterations` iterations, the initial rate for the first
/// `constantIterations`, then a linear decay towards 0 over the rest (the reference CycleGAN's "linear" policy with
/// one unit per iteration: factor(i) = 1 − max(0, i + 1 − constant) / (decay + 1)). DC-GAN (examples/dcgan) keeps
/// the rate constant: `constantIterations == totalIterations`.
public struct IterationSchedule: Codable, Sendable, Hashable {
    public var totalIterations: Int
    public var constantIterations: Int

    public init(totalIterations: Int, constantIterations: Int? = nil) {
        self.totalIterations = totalIterations
        self.constantIterations = min(constantIterations ?? totalIterations, totalIterations)
    }

    /// The learning rate during 0-based iteration `iteration`.
    public func learningRate(atIteration iteration: Int, initial: Float) -> Float {
        let decay = totalIterations - constantIterations
        let decayed = Double(max(0, iteration + 1 - constantIterations)) / Double(decay + 1)
        return Float(Double(initial) * max(0, 1 - decayed))
    }
}
