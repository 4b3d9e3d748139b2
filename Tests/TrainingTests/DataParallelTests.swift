import Foundation
import Testing
@testable import DataParallel
import NeuralNetwork
import Training

/// Issue 21's pieces that need no MPI: which samples a rank takes, the all-reduce buckets, the weight hash.
@Suite struct DataParallelTests {
    @Test func batchOneOnOneProcessIsTheIteration() {
        let plan = BatchPlan()
        for i in [0, 1, 7, 1000] { #expect(plan.samples(atIteration: i) == i..<(i + 1)) }
    }

    @Test func ranksTakeConsecutiveSharesOfTheGlobalBatch() {
        // 3 ranks × 2: iteration 4's global batch is samples 24…29; rank r takes 24 + 2r and 25 + 2r.
        let shares = (0..<3).map { BatchPlan(batchSize: 2, rank: $0, ranks: 3).samples(atIteration: 4) }
        #expect(shares == [24..<26, 26..<28, 28..<30])
        #expect(BatchPlan(batchSize: 2, rank: 0, ranks: 3).effectiveBatchSize == 6)
        // One process with batch 6 sees the same samples.
        #expect(BatchPlan(batchSize: 6).samples(atIteration: 4) == 24..<30)
    }

    @Test func bucketsPackConsecutiveTensorsUpToTheLimit() {
        // Limit 10 floats: 4 + 5 fit, 6 starts a new one, 12 is a bucket of its own, then 3 + 3 + 3.
        #expect(GradientAverager.plan([4, 5, 6, 12, 3, 3, 3], bucketFloats: 10) == [0..<2, 2..<3, 3..<4, 4..<7])
        #expect(GradientAverager.plan([], bucketFloats: 10).isEmpty)
        #expect(GradientAverager.plan([100], bucketFloats: 10) == [0..<1])
    }

    @Test func weightHashSeesOneBit() {
        let p = Parameter(name: "w", shape: [3])
        p.value.assign(from: Tensor(shape: [3], values: [0.5, -1, 2]))
        let before = WeightHash.of([p])
        #expect(WeightHash.of([p]) == before)
        p.value.data[1] = Float(bitPattern: Float(-1).bitPattern ^ 1)
        #expect(WeightHash.of([p]) != before)
    }
}
