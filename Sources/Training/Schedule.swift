/// A run's length and learning rate: `totalIterations` iterations, the initial rate for the first
/// `constantIterations`, then a linear decay towards 0 over the rest (the reference CycleGAN's "linear" policy,
/// pytorch-CycleGAN-and-pix2pix `networks.get_scheduler`). The rate changes once per unit of `unitLength`
/// iterations: factor(i) = 1 − max(0, u + 1 − n_constant) / (n_decay + 1) for the 0-based unit u = i / unitLength,
/// n_constant and n_decay counted in units. With one iteration per unit (the default) this is a per-iteration
/// decay; with an epoch per unit it is the reference's per-epoch `LambdaLR`. DC-GAN (examples/dcgan) keeps the
/// rate constant: `constantIterations == totalIterations`.
public struct IterationSchedule: Codable, Sendable, Hashable {
    public var totalIterations: Int
    public var constantIterations: Int
    /// Iterations per unit of the decay (1, or the epoch length for the reference's epoch-wise schedule).
    public var unitLength: Int = 1

    public init(totalIterations: Int, constantIterations: Int? = nil) {
        self.totalIterations = totalIterations
        self.constantIterations = min(constantIterations ?? totalIterations, totalIterations)
    }

    /// A schedule of whole units: `constantUnits` units at the initial rate, then `decayUnits` decaying, each
    /// `unitLength` iterations long.
    public init(unitLength: Int, constantUnits: Int, decayUnits: Int) {
        let unit = max(unitLength, 1)
        self.init(totalIterations: unit * (constantUnits + decayUnits), constantIterations: unit * constantUnits)
        self.unitLength = unit
    }

    private enum CodingKeys: String, CodingKey { case totalIterations, constantIterations, unitLength }

    /// Decodes schedules written before `unitLength` existed as one iteration per unit.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        totalIterations = try c.decode(Int.self, forKey: .totalIterations)
        constantIterations = try c.decode(Int.self, forKey: .constantIterations)
        unitLength = try c.decodeIfPresent(Int.self, forKey: .unitLength) ?? 1
    }

    /// Encodes `unitLength` only when it is not 1 (schedules of one iteration per unit encode as before).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(totalIterations, forKey: .totalIterations)
        try c.encode(constantIterations, forKey: .constantIterations)
        if unitLength != 1 { try c.encode(unitLength, forKey: .unitLength) }
    }

    /// The factor applied to the initial rate during 0-based iteration `iteration`.
    public func factor(atIteration iteration: Int) -> Double {
        let unit = max(unitLength, 1)
        let constantUnits = constantIterations / unit
        let decayUnits = (totalIterations - constantIterations) / unit
        let decayed = Double(max(0, iteration / unit + 1 - constantUnits)) / Double(decayUnits + 1)
        return max(0, 1 - decayed)
    }

    /// The learning rate during 0-based iteration `iteration`.
    public func learningRate(atIteration iteration: Int, initial: Float) -> Float {
        Float(Double(initial) * factor(atIteration: iteration))
    }
}
