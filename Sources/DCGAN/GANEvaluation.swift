import Foundation
import NeuralNetwork

/// Sample-quality figures that need no download (issue 17): the Wasserstein-1 distance between the intensity
/// distributions of generated and real patches, and, for a conditional GAN, GAN-test / GAN-train accuracies
/// (Shmelkov et al. 2018) with a nearest-class-mean classifier in pixel space (not the CNN of the paper: a
/// classifier with nothing to tune, so the figure measures the images, not a training run).
public enum GANEvaluation {
    /// W₁ between the empirical distributions of `a` and `b`: ∫ |F_a(x) − F_b(x)| dx, exact for the samples (the
    /// area between the two step CDFs; the same as scipy.stats.wasserstein_distance). 0 for identical samples.
    public static func wasserstein1(_ a: [Float], _ b: [Float]) -> Double {
        guard !a.isEmpty, !b.isEmpty else { return .nan }
        let x = a.sorted(), y = b.sorted()
        var i = 0, j = 0, total = 0.0
        var previous = Double(min(x[0], y[0]))
        while i < x.count || j < y.count {
            let next: Double
            if j >= y.count || (i < x.count && x[i] <= y[j]) { next = Double(x[i]) } else { next = Double(y[j]) }
            total += abs(Double(i) / Double(x.count) - Double(j) / Double(y.count)) * (next - previous)
            previous = next
            while i < x.count, Double(x[i]) == next { i += 1 }
            while j < y.count, Double(y[j]) == next { j += 1 }
        }
        return total
    }

    /// The nearest-class-mean classifier: the mean image of each class.
    public struct NearestMean {
        public let means: [[Float]]

        /// Means of `images` (each `size` values) by class; a class without images gets no mean (never chosen).
        public init(images: [Float], classes: [Int], classCount: Int, size: Int) {
            var sums = [[Double]](repeating: [Double](repeating: 0, count: size), count: classCount)
            var counts = [Int](repeating: 0, count: classCount)
            for (n, c) in classes.enumerated() {
                counts[c] += 1
                for k in 0..<size { sums[c][k] += Double(images[n * size + k]) }
            }
            means = zip(sums, counts).map { s, n in n == 0 ? [] : s.map { Float($0 / Double(n)) } }
        }

        /// The class whose mean is nearest (Euclidean) to `image`.
        public func classify(_ image: ArraySlice<Float>) -> Int {
            var best = (-1, Double.infinity)
            for (c, mean) in means.enumerated() where !mean.isEmpty {
                var d = 0.0
                for (k, v) in image.enumerated() { let e = Double(v - mean[k]); d += e * e }
                if d < best.1 { best = (c, d) }
            }
            return best.0
        }

        /// The share of `images` classified as their `classes`.
        public func accuracy(images: [Float], classes: [Int], size: Int) -> Double {
            guard !classes.isEmpty else { return .nan }
            let right = classes.enumerated().filter { classify(images[($0.offset * size)..<(($0.offset + 1) * size)]) == $0.element }.count
            return Double(right) / Double(classes.count)
        }
    }

    /// One class's (or all patches') figures.
    public struct ClassResult: Sendable {
        public var name: String
        public var real: Int
        public var generated: Int
        public var wasserstein1: Double
    }

    public struct Result: Sendable {
        /// W₁ over all patches, in patch units.
        public var wasserstein1: Double
        public var classes: [ClassResult]
        /// cgan: nearest-mean classifier trained on real patches, accuracy on generated ones (GAN-test).
        public var ganTest: Double?
        /// cgan: trained on generated patches, accuracy on real ones (GAN-train).
        public var ganTrain: Double?
        /// cgan: trained on real patches, accuracy on the same real patches (the classifier's ceiling here).
        public var realOnReal: Double?
    }

    /// Generates `perClass` images per class (all the same count for dcgan) with seeded noise and compares them
    /// with `real` (values in [−1, 1], mapped to patch units by the model's intensity map).
    public static func evaluate(generator: ConditionedNetwork, configuration: GANConfiguration, real: PatchDataset,
                                perClass: Int?, seed: UInt64) -> Result {
        let size = configuration.channels * configuration.imageSize * configuration.imageSize
        let map = configuration.intensity
        let realUnits = real.values.map { map.value($0) }
        let classCount = max(1, configuration.classCount)
        var generated: [Float] = [], generatedClasses: [Int] = []
        for c in 0..<classCount {
            let n = perClass ?? max(1, real.classes.filter { $0 == c }.count)
            var done = 0
            while done < n {
                let chunk = min(64, n - done)
                let z = GANSampler.seededNoise(count: chunk, nz: configuration.nz, seed: seed &+ UInt64(c) &* 1_000_003 &+ UInt64(done))
                let labels = configuration.family == .cgan ? Tensor(shape: [chunk], values: Array(repeating: Float(c), count: chunk)) : nil
                generated += generator.infer(z, labels: labels).toArray().map { map.value($0) }
                generatedClasses += Array(repeating: c, count: chunk)
                done += chunk
            }
        }
        func pixels(_ values: [Float], _ classes: [Int], _ c: Int) -> [Float] {
            classes.enumerated().filter { $0.element == c }.flatMap { values[($0.offset * size)..<(($0.offset + 1) * size)] }
        }
        var result = Result(wasserstein1: wasserstein1(generated, realUnits), classes: [])
        if configuration.family == .cgan {
            for c in 0..<classCount {
                result.classes.append(ClassResult(name: configuration.classNames[c], real: real.classes.filter { $0 == c }.count,
                                                  generated: generatedClasses.filter { $0 == c }.count,
                                                  wasserstein1: wasserstein1(pixels(generated, generatedClasses, c), pixels(realUnits, real.classes, c))))
            }
            let onReal = NearestMean(images: realUnits, classes: real.classes, classCount: classCount, size: size)
            result.ganTest = onReal.accuracy(images: generated, classes: generatedClasses, size: size)
            result.realOnReal = onReal.accuracy(images: realUnits, classes: real.classes, size: size)
            let onGenerated = NearestMean(images: generated, classes: generatedClasses, classCount: classCount, size: size)
            result.ganTrain = onGenerated.accuracy(images: realUnits, classes: real.classes, size: size)
        }
        return result
    }
}
