import CycleGAN
import Training

/// The learning-rate schedule of the reference CycleGAN (Zhu et al. 2017; pytorch-CycleGAN-and-pix2pix
/// `networks.get_scheduler`, policy "linear"): the initial rate for `constantUnits` units, then a linear decay over
/// `decayUnits` units. A unit is an epoch (`unitLength` = epoch length, the reference) or a single iteration (when a
/// run is given as a number of iterations). Within a unit the rate is constant, exactly as the reference steps its
/// `LambdaLR` once per epoch: factor(u) = 1 − max(0, u + 1 − n) / (n_decay + 1) for the 0-based unit u.
public struct TrainingSchedule: Codable, Sendable, Hashable {
    /// Iterations per unit (the epoch length, or 1).
    public var unitLength: Int
    /// Units at the initial learning rate (`n_epochs`).
    public var constantUnits: Int
    /// Units of linear decay (`n_epochs_decay`).
    public var decayUnits: Int

    public init(unitLength: Int, constantUnits: Int, decayUnits: Int) {
        self.unitLength = unitLength
        self.constantUnits = constantUnits
        self.decayUnits = decayUnits
    }

    /// `epochs` epochs at the initial rate then `decayEpochs` epochs of decay, `epochLength` iterations each.
    public static func epochs(_ epochs: Int, decayEpochs: Int, epochLength: Int) -> TrainingSchedule {
        TrainingSchedule(unitLength: epochLength, constantUnits: epochs, decayUnits: decayEpochs)
    }

    /// `iterations` iterations in all: the first half at the initial rate, the second half decaying linearly
    /// (the reference's 100 + 100 epochs proportion), one unit per iteration.
    public static func iterations(_ iterations: Int) -> TrainingSchedule {
        TrainingSchedule(unitLength: 1, constantUnits: iterations / 2, decayUnits: iterations - iterations / 2)
    }

    /// The number of iterations of the whole run.
    public var totalIterations: Int { unitLength * (constantUnits + decayUnits) }

    /// The factor applied to the initial learning rate during 0-based iteration `iteration`.
    public func factor(atIteration iteration: Int) -> Double {
        let unit = iteration / max(unitLength, 1)
        let decayed = Double(max(0, unit + 1 - constantUnits)) / Double(decayUnits + 1)
        return max(0, 1 - decayed)
    }

    /// The learning rate during 0-based iteration `iteration` for initial rate `initial`.
    public func learningRate(atIteration iteration: Int, initial: Float) -> Float {
        Float(Double(initial) * factor(atIteration: iteration))
    }
}

extension TrainingSchedule {
    /// The same schedule as the training loop's `IterationSchedule` (units of `unitLength` iterations; the same
    /// rate at every iteration, bit for bit).
    public var iterationSchedule: IterationSchedule {
        IterationSchedule(unitLength: unitLength, constantUnits: constantUnits, decayUnits: decayUnits)
    }
}
