import Foundation
import Testing
import DCGAN

@Suite struct GANEvaluationTests {
    /// Against scipy.stats.wasserstein_distance (SciPy 1.x): [0, 1, 3] vs [5, 6, 8] → 5.0; [0, 10, 10, 3.5, −2] vs
    /// [1, 1, 7] → 2.9; [1, 2, 3, 4] vs [2, 2, 2] → 1.0 (values printed by scipy, pasted here).
    @Test func wassersteinOneEqualsSciPy() {
        #expect(abs(GANEvaluation.wasserstein1([0, 1, 3], [5, 6, 8]) - 5.0) < 1e-12)
        #expect(abs(GANEvaluation.wasserstein1([0, 10, 10, 3.5, -2], [1, 1, 7]) - 2.9) < 1e-12)
        #expect(abs(GANEvaluation.wasserstein1([1, 2, 3, 4], [2, 2, 2]) - 1.0) < 1e-12)
        #expect(GANEvaluation.wasserstein1([4, 1, 2], [2, 4, 1]) == 0)
    }

    /// Two classes of 2-pixel images, means (0, 0) and (10, 10): points go to the nearer mean.
    @Test func nearestMeanClassifierChoosesTheNearerMean() {
        let classifier = GANEvaluation.NearestMean(images: [0, 0, -1, 1, 10, 10, 11, 9], classes: [0, 0, 1, 1], classCount: 2, size: 2)
        #expect(classifier.means == [[-0.5, 0.5], [10.5, 9.5]])
        #expect(classifier.accuracy(images: [1, 1, 9, 9, 6, 6], classes: [0, 1, 0], size: 2) == 2.0 / 3)
    }
}
