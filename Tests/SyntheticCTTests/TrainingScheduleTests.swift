import Foundation
import Testing
@testable import CycleGAN
@testable import SyntheticCT
import Training

@Suite("Learning-rate schedule (reference LambdaLR rule)")
struct TrainingScheduleTests {
    /// n_epochs 2, n_epochs_decay 2, 3 iterations per epoch; the reference's factors per epoch are
    /// 1 − max(0, e + 1 − 2)/3 for e = 0…3: 1, 1, 2/3, 1/3.
    @Test func epochScheduleMatchesTheReferenceRule() {
        let schedule = TrainingSchedule.epochs(2, decayEpochs: 2, epochLength: 3)
        #expect(schedule.totalIterations == 12)
        let factors = (0..<12).map { schedule.factor(atIteration: $0) }
        let expected: [Double] = [1, 1, 1, 1, 1, 1, 2.0 / 3, 2.0 / 3, 2.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3]
        for (f, e) in zip(factors, expected) { #expect(abs(f - e) < 1e-12) }
        #expect(abs(schedule.learningRate(atIteration: 9, initial: 3e-4) - 1e-4) < 1e-10)
    }

    /// The reference's 100 + 100 epochs: the rate is 2e-4 through epoch 100, 2e-4·100/101 in epoch 101, and
    /// 2e-4/101 in the last epoch.
    @Test func referenceDefaults() {
        let schedule = TrainingSchedule.epochs(100, decayEpochs: 100, epochLength: 10)
        #expect(schedule.factor(atIteration: 999) == 1)
        #expect(abs(schedule.factor(atIteration: 1000) - 100.0 / 101) < 1e-12)
        #expect(abs(schedule.factor(atIteration: 1999) - 1.0 / 101) < 1e-12)
    }

    @Test func iterationSchedule() {
        let schedule = TrainingSchedule.iterations(5)
        #expect(schedule.totalIterations == 5)
        let factors = (0..<5).map { schedule.factor(atIteration: $0) }
        // constant 2, decay 3: 1, 1, 1 − 1/4, 1 − 2/4, 1 − 3/4
        #expect(factors == [1, 1, 0.75, 0.5, 0.25])
    }

    /// The training loop's schedule gives the same rate as the reference schedule at every iteration, bit for bit
    /// (the loop trains CycleGAN runs with `iterationSchedule`).
    @Test func theLoopsScheduleIsTheSame() {
        for schedule in [TrainingSchedule.epochs(2, decayEpochs: 2, epochLength: 3), .epochs(3, decayEpochs: 0, epochLength: 5),
                         .epochs(0, decayEpochs: 4, epochLength: 7), .iterations(5), .iterations(1), .iterations(1000)] {
            let loop = schedule.iterationSchedule
            #expect(loop.totalIterations == schedule.totalIterations)
            for i in 0..<(schedule.totalIterations + 2) {
                #expect(loop.learningRate(atIteration: i, initial: 2e-4).bitPattern == schedule.learningRate(atIteration: i, initial: 2e-4).bitPattern,
                        "\(schedule) at \(i)")
            }
        }
    }
}
