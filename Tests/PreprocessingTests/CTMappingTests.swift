import Foundation
import NIfTI
@testable import Preprocessing
import Testing

/// The soft-tissue-aware piecewise-linear CT map (`CTIntensityMapping`), against hand-computed values.
@Suite("CT intensity mapping")
struct CTMappingTests {
    static var softTissue: PreprocessingConfiguration {
        var c = PreprocessingConfiguration()
        c.ctMapping = .softTissue
        return c
    }

    @Test func softTissueKnotsMapAsWrittenAndInvert() {
        let map = IntensityMap.ctWindow(Self.softTissue)
        // Knots: −1024 → −1, −200 → −0.6, 250 → 0.4, 3000 → 1.
        let cases: [(Float, Float)] = [(-3024, -1), (-1024, -1), (-612, -0.8), (-200, -0.6), (0, -0.6 + 200.0 / 450),
                                       (25, -0.1), (250, 0.4), (1625, 0.7), (3000, 1), (4000, 1)]
        for (hu, expected) in cases {
            #expect(abs(map.normalize(hu) - expected) < 1e-6, "\(hu) HU → \(map.normalize(hu)), expected \(expected)")
        }
        // The buffer path agrees with the scalar one, and denormalisation inverts inside [−1024, 3000].
        var values: [Float] = cases.map(\.0)
        values.withUnsafeMutableBufferPointer { map.normalize($0) }
        for (v, c) in zip(values, cases) { #expect(abs(v - c.1) < 1e-6) }
        for hu: Float in [-1024, -500, -100, -20, 0, 40, 80, 200, 700, 2999] {
            var one: [Float] = [map.normalize(hu)]
            one.withUnsafeMutableBufferPointer { map.denormalize($0) }
            #expect(abs(one[0] - hu) < 0.01, "\(hu)")
            #expect(abs(map.denormalize(map.normalize(hu)) - hu) < 0.01)
        }
        // Soft tissue −100…+100 HU spans 200/450 of 1.0 = 0.444 (the linear window: 200/4024·2 = 0.0994).
        #expect(abs((map.normalize(100) - map.normalize(-100)) - 0.4444444) < 1e-5)
        let linear = IntensityMap.ctWindow(PreprocessingConfiguration())
        #expect(abs((linear.normalize(100) - linear.normalize(-100)) - 0.0994036) < 1e-5)
    }

    @Test func theDefaultIsTheLinearWindowAndOldConfigurationsDecodeUnchanged() throws {
        let d = PreprocessingConfiguration()
        #expect(d.ctMapping == .window)
        let json = String(decoding: try JSONEncoder().encode(d), as: UTF8.self)
        #expect(!json.contains("ctMapping"), "the default encodes as earlier versions did: \(json)")
        let old = #"{"plane":"axial","contextSlices":1,"sliceSize":96,"ctWindow":[-1024,3000],"mrNormalization":{"percentile":{"lower":0.5,"upper":99.5}},"minimumBodyFraction":0.05}"#
        let decoded = try JSONDecoder().decode(PreprocessingConfiguration.self, from: Data(old.utf8))
        #expect(decoded.ctMapping == .window)
        let encoded = try JSONEncoder().encode(Self.softTissue)
        #expect(String(decoding: encoded, as: UTF8.self).contains(#""kind":"piecewiseLinear""#))
        #expect(try JSONDecoder().decode(PreprocessingConfiguration.self, from: encoded) == Self.softTissue)
    }

    @Test func invalidKnotsAreRefused() {
        for knots in [[IntensityKnot(0, -1)],
                      [IntensityKnot(0, -1), IntensityKnot(0, 1)],
                      [IntensityKnot(0, -1), IntensityKnot(10, 0.5), IntensityKnot(20, 0.4), IntensityKnot(30, 1)],
                      [IntensityKnot(0, -0.5), IntensityKnot(10, 1)],
                      [IntensityKnot(0, -1), IntensityKnot(.nan, 1)]] {
            var c = PreprocessingConfiguration()
            c.ctMapping = .piecewiseLinear(knots)
            #expect(throws: PreprocessingError.self) { try c.validate() }
        }
        #expect(throws: Never.self) { try Self.softTissue.validate() }
    }

    @Test func slicesOfACTRoundTripThroughTheSoftTissueMap() throws {
        // A CT with soft tissue values: prepared and reassembled unchanged within float rounding.
        let grid = GridSize(12, 12, 3)
        let voxels = (0..<grid.count).map { Float(-150 + ($0 * 37) % 400) }
        let volume = Volume(grid: grid, voxels: voxels, affine: .scaling(SIMD3(1, 1, 2)))
        var c = Self.softTissue
        c.sliceSize = 12
        let pipeline = SlicePipeline(configuration: c)
        let prepared = try pipeline.prepare(volume, as: .ct)
        let slices = (0..<prepared.sliceCount).map { prepared.processedSlice($0) }
        let back = pipeline.reassemble(slices, like: prepared, as: .ct)
        for (a, b) in zip(back.voxels, voxels) { #expect(abs(a - b) < 0.01) }
    }
}
