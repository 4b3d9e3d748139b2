import Foundation
import NIfTI
@testable import Preprocessing
import Testing

@Suite struct OrientationTests {
    @Test func matchesNibabelIoOrientation() throws {
        let reference = try Reference.load()
        #expect(reference.orientation.count >= 8)
        for case_ in reference.orientation {
            let affine = Affine(case_.affine)
            let axes = try #require(CanonicalOrientation.ioOrientation(affine), "\(case_.name)")
            #expect(axes.map(\.world) == case_.worldAxis, "\(case_.name)")
            #expect(axes.map(\.sign) == case_.sign, "\(case_.name)")
            let orientation = try #require(CanonicalOrientation(grid: GridSize(4, 5, 6), affine: affine))
            #expect(orientation.sourceCode == case_.code, "\(case_.name)")
        }
    }

    @Test func singularAffineHasNoOrientation() {
        let flat = Affine.scaling(SIMD3(1, 0, 1))
        #expect(CanonicalOrientation(grid: GridSize(2, 2, 2), affine: flat) == nil)
    }

    /// The canonical affine maps canonical voxel indices to the same world points as the source affine.
    @Test func canonicalAffineDescribesTheSameWorldPoints() throws {
        let ras = makeRASVolume(5, 4, 3)
        for c in orientedCases(ras) {
            let o = try #require(CanonicalOrientation(grid: c.volume.grid, affine: c.volume.affine))
            #expect(o.canonicalGrid == ras.grid, "\(c)")
            let canonical = o.canonicalAffine(from: c.volume.affine)
            for (a, b, cc) in [(0, 0, 0), (4, 3, 2), (1, 2, 1), (3, 0, 2)] {
                let source = o.sourceIndex(a, b, cc)
                let i = source % c.volume.grid.nx, j = (source / c.volume.grid.nx) % c.volume.grid.ny
                let k = source / (c.volume.grid.nx * c.volume.grid.ny)
                let p = c.volume.affine.apply(SIMD3(Double(i), Double(j), Double(k)))
                let q = canonical.apply(SIMD3(Double(a), Double(b), Double(cc)))
                #expect(abs(p.x - q.x) + abs(p.y - q.y) + abs(p.z - q.z) < 1e-9, "\(c)")
                // Same physical point: the same value as the RAS volume's voxel.
                #expect(c.volume.voxels[source] == ras[a, b, cc], "\(c)")
            }
            // Canonical axes point to R, A, S.
            for axis in 0..<3 { #expect(canonical[axis, axis] > 0, "\(c)") }
        }
    }
}
