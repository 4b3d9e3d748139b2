import Foundation
import NIfTI
@testable import Preprocessing
import Testing

@Suite struct IntensityTests {
    /// CT: [-1024, 3000] → [-1, 1] linearly, clipped; the inverse gives HU back.
    @Test func ctWindowMapAndInverse() {
        let map = IntensityMap.ctWindow(PreprocessingConfiguration())
        #expect(map.normalize(-1024) == -1)
        #expect(map.normalize(3000) == 1)
        #expect(abs(map.normalize(988) - 0) < 1e-6)          // the window's centre
        #expect(abs(map.normalize(0) - (-1 + 2 * 1024 / 4024)) < 1e-6)
        #expect(map.normalize(-3024) == -1 && map.normalize(5000) == 1)
        var worst: Float = 0
        for hu in stride(from: Float(-1024), through: 3000, by: 0.37) {
            worst = max(worst, abs(map.denormalize(map.normalize(hu)) - hu))
        }
        #expect(worst < 1e-3)
        // Buffer path agrees with the scalar path.
        var values: [Float] = [-2000, -1024, -500.5, 0, 40, 1500, 3000, 4000]
        let scalar = values.map { map.normalize($0) }
        values.withUnsafeMutableBufferPointer { map.normalize($0) }
        #expect(maxAbsDifference(values, scalar) < 1e-6)
        values.withUnsafeMutableBufferPointer { map.denormalize($0) }
        #expect(maxAbsDifference(values, [-1024, -1024, -500.5, 0, 40, 1500, 3000, 3000]) < 1e-3)
    }

    /// Percentiles equal numpy's linear-interpolation percentiles.
    @Test func percentilesMatchNumpy() throws {
        let reference = try Reference.load()
        for p in reference.percentiles {
            var values = reference.percentileValues
            let got = values.withUnsafeMutableBufferPointer { Statistics.percentile($0, p.p) }
            #expect(abs(got - p.value) < 1e-4 * max(1, abs(p.value)), "p = \(p.p)")
        }
    }

    /// MR percentile scaling uses only the voxels inside the mask; z-score the mask's mean and deviation.
    @Test func mrMapsUseTheMask() {
        // Inside: 1…100; outside: huge values that must not matter.
        var voxels = (1...100).map(Float.init)
        voxels += [Float](repeating: 1e6, count: 50)
        let mask = (0..<150).map { $0 < 100 }
        let p = IntensityMap.mr(voxels, mask: mask, normalization: .percentile(lower: 0.5, upper: 99.5))
        // numpy: percentile(1…100, 0.5) = 1 + 0.005·99 = 1.495; 99.5 → 100 − 0.495 = 99.505.
        #expect(abs(p.lower - 1.495) < 1e-9 && abs(p.upper - 99.505) < 1e-9 && p.clipped)
        #expect(p.normalize(1e6) == 1 && p.normalize(0) == -1)
        let z = IntensityMap.mr(voxels, mask: mask, normalization: .zScore)
        // mean 50.5, population sd sqrt((100² − 1)/12).
        let sd = ((100.0 * 100 - 1) / 12).squareRoot()
        #expect(abs(z.lower - (50.5 - sd)) < 1e-9 && abs(z.upper - (50.5 + sd)) < 1e-9 && !z.clipped)
        #expect(abs(z.normalize(50.5)) < 1e-6)
        #expect(abs(z.normalize(Float(50.5 + 2 * sd)) - 2) < 1e-5)
        #expect(abs(z.denormalize(z.normalize(1e6)) - 1e6) < 1)
    }

    /// A constant volume does not divide by zero.
    @Test func constantVolumeMapIsFinite() {
        let map = IntensityMap.mr([Float](repeating: 7, count: 10), mask: nil, normalization: .percentile(lower: 1, upper: 99))
        #expect(map.normalize(7).isFinite && map.upper > map.lower)
    }
}
