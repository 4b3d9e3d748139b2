import Foundation
import NIfTI
@testable import Preprocessing
import Testing

/// A synthetic head: a noisy ellipsoid with an enclosed spherical cavity and a vertical tunnel (closed in
/// each axial section, open at the top in 3-D), plus a separate blob outside; noisy background.
struct SyntheticHead {
    let grid = GridSize(48, 56, 40)
    let centre = SIMD3<Double>(22, 28, 20), radii = SIMD3<Double>(15, 20, 14)
    let cavityCentre = SIMD3<Double>(22, 30, 18), cavityRadius = 4.0
    let tunnel = SIMD2<Double>(22, 20), tunnelRadius = 2.0, tunnelBottom = 22.0
    let blobCentre = SIMD3<Double>(43, 6, 6), blobRadius = 3.0

    func inEllipsoid(_ i: Int, _ j: Int, _ k: Int) -> Bool {
        let d = (SIMD3(Double(i), Double(j), Double(k)) - centre) / radii
        return (d * d).sum() <= 1
    }
    func inCavity(_ i: Int, _ j: Int, _ k: Int) -> Bool {
        let d = SIMD3(Double(i), Double(j), Double(k)) - cavityCentre
        return (d * d).sum() <= cavityRadius * cavityRadius
    }
    func inTunnel(_ i: Int, _ j: Int, _ k: Int) -> Bool {
        let d = SIMD2(Double(i), Double(j)) - tunnel
        return (d * d).sum() <= tunnelRadius * tunnelRadius && Double(k) >= tunnelBottom
    }
    func inBlob(_ i: Int, _ j: Int, _ k: Int) -> Bool {
        let d = SIMD3(Double(i), Double(j), Double(k)) - blobCentre
        return (d * d).sum() <= blobRadius * blobRadius
    }

    func volume(affine: Affine = .identity) -> Volume {
        var voxels = [Float](repeating: 0, count: grid.count)
        for k in 0..<grid.nz {
            for j in 0..<grid.ny {
                for i in 0..<grid.nx {
                    let v = grid.index(i, j, k)
                    let tissue = (inEllipsoid(i, j, k) && !inCavity(i, j, k) && !inTunnel(i, j, k)) || inBlob(i, j, k)
                    voxels[v] = tissue ? hashValue(v, seed: 11, 90, 110) : hashValue(v, seed: 12, 0, 10)
                }
            }
        }
        return Volume(grid: grid, voxels: voxels, affine: affine)
    }

    /// The ellipsoid (holes filled) grown by one voxel along the six face neighbours.
    func expectedMask(_ i: Int, _ j: Int, _ k: Int) -> Bool {
        inEllipsoid(i, j, k) || inEllipsoid(i - 1, j, k) || inEllipsoid(i + 1, j, k)
            || inEllipsoid(i, j - 1, k) || inEllipsoid(i, j + 1, k) || inEllipsoid(i, j, k - 1) || inEllipsoid(i, j, k + 1)
    }
}

@Suite struct BodyMaskTests {
    @Test func otsuMatchesScikitImage() throws {
        let reference = try Reference.load()
        for c in reference.otsu {
            let lo = c.values.min()!, hi = c.values.max()!
            let t = BodyMask.otsu(c.values, lower: lo, upper: hi, bins: 256)
            #expect(abs(t - c.threshold) <= 1e-4 * (hi - lo), "\(c.name): \(t) vs \(c.threshold)")
        }
    }

    /// Cavity filled (3-D), tunnel filled where its axial sections are closed rings (2-D), the outside blob
    /// dropped (largest component), one voxel of dilation. Voxels of the tunnel's open end at the top pole are
    /// not asserted (whether a section is closed there depends on the voxelisation).
    @Test(arguments: ["RAS", "LPS"])
    func syntheticHeadMask(orientation: String) throws {
        let head = SyntheticHead()
        let g = head.grid
        var affine = Affine.identity
        if orientation == "LPS" { affine = Affine.scaling(SIMD3(-1, -1, 1)) }
        let mask = BodyMask.compute(head.volume(affine: affine))
        #expect(mask.count == g.count)
        var wrong = 0, tunnelChecked = 0
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    let topPole = Double(k) > head.centre.z + 9 && head.inTunnel(i, j, k)
                    if topPole { continue }
                    if mask[g.index(i, j, k)] != head.expectedMask(i, j, k) { wrong += 1 }
                    if head.inTunnel(i, j, k) && head.inEllipsoid(i, j, k) { tunnelChecked += 1 }
                    if head.inBlob(i, j, k) { #expect(!mask[g.index(i, j, k)]) }
                }
            }
        }
        #expect(wrong == 0)
        #expect(tunnelChecked > 50)
        // Without 2-D filling the tunnel stays open (it reaches the outside in 3-D).
        var options = BodyMask.Options()
        options.fillHolesPerSlice = false
        let open = BodyMask.compute(head.volume(affine: affine), options: options)
        #expect(!open[g.index(22, 20, 24)] && mask[g.index(22, 20, 24)])
        #expect(open[g.index(22, 30, 18)])   // the enclosed cavity is filled in 3-D
    }

    /// CT with −3024 HU outside the scanner's field of view, air, a body and a separate table: the mask is the
    /// body (padding and air are one class; the table is a smaller component).
    @Test func ctWithFieldOfViewPaddingAndTable() {
        let g = GridSize(40, 40, 12)
        var voxels = [Float](repeating: -1000, count: g.count)
        var body = [Bool](repeating: false, count: g.count)
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    let v = g.index(i, j, k)
                    let x = Double(i) - 19.5, y = Double(j) - 19.5
                    if x * x + y * y > 19 * 19 { voxels[v] = -3024; continue }
                    if (x * x) / 144 + (y * y) / 64 <= 1 { voxels[v] = hashValue(v, seed: 3, 0, 80); body[v] = true }
                    if j == 32 && abs(x) < 12 { voxels[v] = 200 }   // table, not touching the body
                }
            }
        }
        let mask = BodyMask.compute(Volume(grid: g, voxels: voxels, affine: .identity))
        var expected = body
        BodyMask.dilate(&expected, grid: g)
        #expect(mask == expected)
    }

    /// Full-size brain grid: iterative labelling and flood fills finish without deep recursion.
    @Test func fullSizeGridRunsIteratively() {
        let g = GridSize(181, 217, 181)
        var voxels = [Float](repeating: 0, count: g.count)
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    let d = SIMD3(Double(i) - 90, Double(j) - 108, Double(k) - 90) / SIMD3(70, 90, 75)
                    if (d * d).sum() <= 1 { voxels[g.index(i, j, k)] = 100 }
                }
            }
        }
        let mask = BodyMask.compute(Volume(grid: g, voxels: voxels, affine: .identity))
        let fraction = BodyMask.fraction(mask)
        // 4/3·π·70·90·75 / (181·217·181) ≈ 0.2796, plus one voxel shell.
        #expect(fraction > 0.2796 && fraction < 0.2796 * 1.06)
    }
}
