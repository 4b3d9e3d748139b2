import Foundation
import NIfTI
@testable import Preprocessing
import Testing

/// The identity "network": the centre channel of every input slice, as the predicted slice.
func identityNetwork(_ prepared: PreparedVolume) -> [[Float]] {
    let plane = prepared.sliceSize * prepared.sliceSize
    let centre = prepared.channels / 2
    return (0..<prepared.sliceCount).map { Array(prepared.inputSlice($0)[(centre * plane)..<((centre + 1) * plane)]) }
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

@Suite struct SliceRoundTripTests {
    /// Volume → slices → volume is the identity for every orientation, plane and context size, with odd and
    /// non-square in-plane sizes padded into the slice: the same grid, affine and header, bit for bit, and
    /// the same HU values within float rounding.
    @Test(arguments: SlicePlane.allCases, [1, 3, 5])
    func identityRoundTrip(plane: SlicePlane, context: Int) throws {
        var configuration = PreprocessingConfiguration()
        configuration.plane = plane
        configuration.contextSlices = context
        configuration.sliceSize = 20
        configuration.ctOutsideBody = .keep   // geometry only: the outside-body masking is RealMaskTests'
        let pipeline = SlicePipeline(configuration: configuration)
        for c in orientedCases(makeRASVolume(13, 10, 7)) {
            let prepared = try pipeline.prepare(c.volume, as: .ct)
            #expect(prepared.channels == context)
            #expect(prepared.inputSlice(0).count == context * 20 * 20)
            let back = pipeline.reassemble(identityNetwork(prepared), like: prepared, as: .ct)
            #expect(back.grid == c.volume.grid, "\(c)")
            #expect(back.affine == c.volume.affine, "\(c)")
            #expect(back.header == c.volume.header, "\(c)")
            #expect(maxAbsDifference(back.voxels, c.volume.voxels) < 1e-3, "\(c)")
        }
    }

    /// Every stored orientation of one physical image gives bit-identical slices: the slices depend on the
    /// anatomy, not on how the file lays out its voxels.
    @Test(arguments: SlicePlane.allCases)
    func slicesDoNotDependOnStorageOrder(plane: SlicePlane) throws {
        var configuration = PreprocessingConfiguration()
        configuration.plane = plane
        configuration.contextSlices = 3
        configuration.sliceSize = 16
        let pipeline = SlicePipeline(configuration: configuration)
        let cases = orientedCases(makeRASVolume(9, 12, 6, seed: 7))
        let reference = try pipeline.prepare(cases[0].volume, as: .ct)
        for c in cases.dropFirst() {
            let prepared = try pipeline.prepare(c.volume, as: .ct)
            #expect(prepared.sliceCount == reference.sliceCount, "\(c)")
            for s in 0..<reference.sliceCount {
                #expect(prepared.inputSlice(s) == reference.inputSlice(s), "\(c) slice \(s)")
                #expect(prepared.bodyFraction(ofSlice: s) == reference.bodyFraction(ofSlice: s), "\(c) slice \(s)")
            }
        }
    }

    /// Hand-computed layout of a RAS volume: axial slice k, row r, column c is voxel (c, ny−1−r, k), padded
    /// centred (floor of half the padding before); channels are the neighbouring slices, replicated at the ends.
    @Test func axialLayoutByHand() throws {
        var configuration = PreprocessingConfiguration()
        configuration.contextSlices = 3
        configuration.sliceSize = 8
        let volume = makeRASVolume(5, 4, 3)
        let prepared = try SlicePipeline(configuration: configuration).prepare(volume, as: .ct)
        let map = IntensityMap(lower: -1024, upper: 3000, clipped: true)
        let input = prepared.inputSlice(0)
        // Padding: (8 − 5)/2 = 1 column before, (8 − 4)/2 = 2 rows before.
        for r in 0..<8 {
            for c in 0..<8 {
                let inside = (1..<6).contains(c) && (2..<6).contains(r)
                for (channel, k) in [(0, 0), (1, 0), (2, 1)] {
                    let got = input[channel * 64 + r * 8 + c]
                    let expected: Float = inside ? map.normalize(volume[c - 1, 4 - 1 - (r - 2), k]) : -1
                    #expect(abs(got - expected) < 1e-6, "row \(r) column \(c) channel \(channel)")
                }
            }
        }
        let coronal = try SlicePipeline(configuration: { var c = configuration; c.plane = .coronal; return c }())
            .prepare(volume, as: .ct)
        // Coronal slice j, row r, column c is voxel (c, j, nz−1−r); size 5 × 3 padded at (1, 2).
        let slice = coronal.processedSlice(2)
        #expect(abs(slice[(2 + 0) * 8 + 1 + 3] - map.normalize(volume[3, 2, 2])) < 1e-6)
        #expect(abs(slice[(2 + 2) * 8 + 1 + 0] - map.normalize(volume[0, 2, 0])) < 1e-6)
        let sagittal = try SlicePipeline(configuration: { var c = configuration; c.plane = .sagittal; return c }())
            .prepare(volume, as: .ct)
        // Sagittal slice i, row r, column c is voxel (i, c, nz−1−r); size 4 × 3 padded at (2, 2).
        #expect(abs(sagittal.processedSlice(4)[(2 + 1) * 8 + 2 + 3] - map.normalize(volume[4, 3, 1])) < 1e-6)
    }

    /// Cropping (slice smaller than the image) keeps the centre exactly and fills what was cut away with the
    /// background (CT: the window minimum) on the way back.
    @Test(arguments: SlicePlane.allCases)
    func croppingInvertsInsideAndFillsBackground(plane: SlicePlane) throws {
        var configuration = PreprocessingConfiguration()
        configuration.plane = plane
        configuration.sliceSize = 8
        configuration.ctOutsideBody = .keep   // geometry only: the outside-body masking is RealMaskTests'
        let pipeline = SlicePipeline(configuration: configuration)
        for c in orientedCases(makeRASVolume(11, 13, 9)) {
            let prepared = try pipeline.prepare(c.volume, as: .ct)
            let g = prepared.geometry
            #expect(g.offsetX == InPlaneGeometry.floorHalf(8 - g.width) && g.offsetX < 0)
            let back = pipeline.reassemble(identityNetwork(prepared), like: prepared, as: .ct)
            var kept = 0, filled = 0
            let layout = prepared.layout
            for s in 0..<layout.sliceCount {
                for r in 0..<layout.height {
                    for col in 0..<layout.width {
                        let v = layout.sourceIndex(slice: s, row: r, column: col)
                        let x = col + g.offsetX, y = r + g.offsetY
                        if (0..<8).contains(x) && (0..<8).contains(y) {
                            #expect(abs(back.voxels[v] - c.volume.voxels[v]) < 1e-3)
                            kept += 1
                        } else {
                            #expect(back.voxels[v] == -1024)
                            filled += 1
                        }
                    }
                }
            }
            #expect(kept == layout.sliceCount * min(8, layout.width) * min(8, layout.height))
            #expect(filled > 0)
        }
    }

    /// Resampling to a target spacing: the resampled size is round(n · spacing / target); a field linear in
    /// space survives the round trip (linear interpolation is exact on it away from the clamped edge pixels),
    /// and a constant field exactly everywhere.
    @Test func resamplingRoundTrip() throws {
        var configuration = PreprocessingConfiguration()
        configuration.targetSpacing = 1.0
        configuration.sliceSize = 64
        // 30 × 20 pixels at 1.5 × 2.0 mm → 45 × 40 pixels at 1 mm.
        let grid = GridSize(30, 20, 3)
        var voxels = [Float](repeating: 0, count: grid.count)
        for k in 0..<3 { for j in 0..<20 { for i in 0..<30 { voxels[grid.index(i, j, k)] = Float(10 * i - 7 * j + 5 * k) } } }
        let volume = Volume(grid: grid, voxels: voxels, affine: .scaling(SIMD3(1.5, 2.0, 3.0)))
        let pipeline = SlicePipeline(configuration: configuration)
        let prepared = try pipeline.prepare(volume, as: .ct)
        #expect(prepared.geometry.resampledWidth == 45 && prepared.geometry.resampledHeight == 40)
        let back = pipeline.reassemble(identityNetwork(prepared), like: prepared, as: .ct)
        #expect(back.affine == volume.affine && back.grid == grid)
        for k in 0..<3 {
            for j in 1..<19 {
                for i in 1..<29 {
                    #expect(abs(back[i, j, k] - volume[i, j, k]) < 0.05, "(\(i), \(j), \(k))")
                }
            }
        }
        let constant = volume.replacingVoxels([Float](repeating: 123.5, count: grid.count))
        let c = try pipeline.prepare(constant, as: .ct)
        let cBack = pipeline.reassemble(identityNetwork(c), like: c, as: .ct)
        #expect(maxAbsDifference(cBack.voxels, constant.voxels) < 1e-3)
    }

    /// MR slices come back in the MR's own units through the volume's map (z-score: unclipped, so exactly).
    @Test func mrZScoreRoundTrip() throws {
        var configuration = PreprocessingConfiguration()
        configuration.sliceSize = 16
        configuration.mrNormalization = .zScore
        configuration.mrOutsideBody = .keep   // the whole volume comes back, outside the body too
        let volume = makeRASVolume(9, 11, 5, seed: 3).replacingVoxels((0..<(9 * 11 * 5)).map { Float($0 % 97) + 3 })
        let pipeline = SlicePipeline(configuration: configuration)
        let prepared = try pipeline.prepare(volume, as: .mr)
        let back = pipeline.reassemble(identityNetwork(prepared), like: prepared, as: .mr)
        #expect(maxAbsDifference(back.voxels, volume.voxels) < 1e-4)
    }

    /// A body mask computed once can be reused (multi-plane conversion); a mask of the wrong size is refused.
    @Test func preparedWithAGivenMask() throws {
        let volume = makeRASVolume(9, 8, 6)
        let mask = BodyMask.compute(volume, options: BodyMask.Options(modality: .mr))   // as prepare(as: .mr) does
        var configuration = PreprocessingConfiguration()
        configuration.sliceSize = 12
        let pipeline = SlicePipeline(configuration: configuration)
        let a = try pipeline.prepare(volume, as: .mr), b = try pipeline.prepare(volume, as: .mr, bodyMask: mask)
        #expect(a.bodyMask == b.bodyMask && a.intensityMap == b.intensityMap)
        #expect((0..<a.sliceCount).allSatisfy { a.inputSlice($0) == b.inputSlice($0) })
        #expect(throws: PreprocessingError.self) { try pipeline.prepare(volume, as: .mr, bodyMask: [true]) }
    }

    /// The body mask of a slice at the network's size: the source mask at the slice's pixels, false in padding.
    @Test func bodyMaskSliceFollowsTheLayout() throws {
        let head = SyntheticHead()
        let volume = head.volume()
        var configuration = PreprocessingConfiguration()
        configuration.sliceSize = 64
        let prepared = try SlicePipeline(configuration: configuration).prepare(volume, as: .mr)
        let g = head.grid
        // 48 × 56 padded into 64 × 64 at (8, 4).
        for k in [10, 20, 30] {
            let slice = prepared.bodyMaskSlice(k)
            for r in 0..<64 {
                for c in 0..<64 {
                    let i = c - 8, j = g.ny - 1 - (r - 4)
                    let expected = (0..<g.nx).contains(i) && (0..<g.ny).contains(j) && prepared.bodyMask[g.index(i, j, k)]
                    #expect(slice[r * 64 + c] == expected, "slice \(k) row \(r) column \(c)")
                }
            }
        }
    }
}
