import Testing
import Evaluation

/// Per-label MAE and ME against sums worked by hand.
struct LabelErrorsTests {
    @Test func errorsAreTalliedPerLabelInsideTheMaskOnly() throws {
        // Voxel:        0     1     2     3     4      5
        let reference: [Float] = [0, 10, 1000, 1500, -1000, 40]
        let prediction: [Float] = [30, 0, 700, 1600, -1000, 0]
        let labels: [Float] = [8, 8, 4, 4, 0, 8]
        let mask = [true, true, true, true, true, false]
        let tallies = try LabelErrors.tally(prediction: prediction, reference: reference, labels: labels, mask: mask)
        #expect(Set(tallies.keys) == [0, 4, 8])
        // Label 8: voxels 0 and 1 (voxel 5 is outside the mask): errors +30, −10.
        #expect(tallies[8] == LabelErrorTally(voxels: 2, absoluteErrorSum: 40, errorSum: 20))
        #expect(tallies[8]?.mae == 20 && tallies[8]?.me == 10)
        // Label 4: errors −300, +100.
        #expect(tallies[4]?.mae == 200 && tallies[4]?.me == -100)
        #expect(tallies[0]?.mae == 0 && tallies[0]?.voxels == 1)
        var pooled = tallies[8]!
        pooled.add(tallies[4]!)
        #expect(pooled.voxels == 4 && pooled.mae == 110 && pooled.me == -45)
        #expect(LabelErrorTally().mae == nil)
    }

    @Test(arguments: [Float(2.5), -1, .nan, 70_000])
    func aLabelThatIsNotAWholeNumberInRangeIsRefused(_ bad: Float) {
        #expect(throws: EvaluationError.self) {
            try LabelErrors.tally(prediction: [0, 0], reference: [0, 0], labels: [1, bad], mask: [true, true])
        }
    }

    @Test func aLabelOutsideTheMaskIsNotLookedAtAndSizesMustAgree() throws {
        let tallies = try LabelErrors.tally(prediction: [5, 0], reference: [0, 0], labels: [1, .nan], mask: [true, false])
        #expect(tallies == [1: LabelErrorTally(voxels: 1, absoluteErrorSum: 5, errorSum: 5)])
        #expect(throws: EvaluationError.self) {
            try LabelErrors.tally(prediction: [0], reference: [0, 0], labels: [1, 1], mask: [true, true])
        }
    }
}
