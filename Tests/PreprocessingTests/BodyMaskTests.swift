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

    /// The ellipsoid (holes filled) grown by the 2 mm margin: every voxel within Euclidean distance 2 (voxels of
    /// 1 mm) of an ellipsoid voxel.
    func expectedMask(_ i: Int, _ j: Int, _ k: Int) -> Bool {
        for dk in -2...2 {
            for dj in -2...2 {
                for di in -2...2 where di * di + dj * dj + dk * dk <= 4 {
                    if inEllipsoid(i + di, j + dj, k + dk) { return true }
                }
            }
        }
        return false
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

    /// With the defaults: the ellipsoid grown by the 2 mm margin, the cavity and the tunnel (2 voxels wide, closed
    /// by the margin and the closing) filled, the outside blob dropped (far below 20 mL). Voxels near the tunnel's
    /// open mouth at the top pole are not asserted (there the margin grows from the tunnel's rim, not the pole).
    @Test(arguments: ["RAS", "LPS"])
    func syntheticHeadMask(orientation: String) throws {
        let head = SyntheticHead()
        let g = head.grid
        var affine = Affine.identity
        if orientation == "LPS" { affine = Affine.scaling(SIMD3(-1, -1, 1)) }
        let mask = BodyMask.compute(head.volume(affine: affine))
        #expect(mask.count == g.count)
        var wrong = 0
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    let d = SIMD2(Double(i), Double(j)) - head.tunnel
                    if Double(k) > head.centre.z + 9 && (d * d).sum() <= 25 { continue }
                    if mask[g.index(i, j, k)] != head.expectedMask(i, j, k) { wrong += 1 }
                    if head.inBlob(i, j, k) { #expect(!mask[g.index(i, j, k)]) }
                }
            }
        }
        #expect(wrong == 0)
    }

    /// Without closing and margin, hole filling alone: the cavity filled (3-D), the tunnel filled where its axial
    /// sections are closed rings (2-D), exactly the ellipsoid; without 2-D filling the tunnel stays open.
    @Test(arguments: ["RAS", "LPS"])
    func syntheticHeadHoleFilling(orientation: String) throws {
        let head = SyntheticHead()
        let g = head.grid
        var affine = Affine.identity
        if orientation == "LPS" { affine = Affine.scaling(SIMD3(-1, -1, 1)) }
        var options = BodyMask.Options()
        options.closing = 0
        options.margin = 0
        let mask = BodyMask.compute(head.volume(affine: affine), options: options)
        var wrong = 0, tunnelChecked = 0
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    if Double(k) > head.centre.z + 9 && head.inTunnel(i, j, k) { continue }
                    if mask[g.index(i, j, k)] != head.inEllipsoid(i, j, k) { wrong += 1 }
                    if head.inTunnel(i, j, k) && head.inEllipsoid(i, j, k) { tunnelChecked += 1 }
                }
            }
        }
        #expect(wrong == 0)
        #expect(tunnelChecked > 50)
        options.fillHolesPerSlice = false
        let open = BodyMask.compute(head.volume(affine: affine), options: options)
        #expect(!open[g.index(22, 20, 24)] && mask[g.index(22, 20, 24)])
        #expect(open[g.index(22, 30, 18)])   // the enclosed cavity is filled in 3-D
        // The 3 mm closing alone closes the tunnel (4 voxels wide) without 2-D filling.
        options.closing = 3
        #expect(BodyMask.compute(head.volume(affine: affine), options: options)[g.index(22, 20, 24)])
    }

    /// CT with −3024 HU outside the scanner's field of view, air, a body and a flat table 3 mm thick under it,
    /// touching it at its lowest point. The body is in the mask; table voxels more than 7 mm from the body
    /// (4 mm couch reach + 2 mm margin + 1 voxel) are not; of the table at most half (the strip under the body)
    /// remains. Without couch removal the whole table is body.
    @Test func ctWithFieldOfViewPaddingAndTouchingTable() {
        let g = GridSize(96, 64, 12)
        var voxels = [Float](repeating: -1000, count: g.count)
        var body = [Bool](repeating: false, count: g.count), table = body
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    let v = g.index(i, j, k)
                    let x = Double(i) - 47.5, y = Double(j) - 25.5
                    if x * x + (Double(j) - 31.5) * (Double(j) - 31.5) > 47 * 47 { voxels[v] = -3024; continue }
                    if (x * x) / 400 + (y * y) / 196 <= 1 { voxels[v] = hashValue(v, seed: 3, 0, 80); body[v] = true }
                    if (40..<43).contains(j), (4..<92).contains(i) {
                        voxels[v] = 300 + hashValue(v, seed: 4, 0, 50)
                        table[v] = true
                    }
                }
            }
        }
        let mask = BodyMask.compute(Volume(grid: g, voxels: voxels, affine: .identity))
        var missedBody = 0, tableKept = 0, tableFar = 0, tableCount = 0
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    let v = g.index(i, j, k)
                    if body[v] && !mask[v] { missedBody += 1 }
                    guard table[v] else { continue }
                    tableCount += 1
                    if mask[v] { tableKept += 1 }
                    if !withinSevenVoxelsInSection(body, grid: g, i, j, k) {
                        tableFar += 1
                        #expect(!mask[v], "table voxel (\(i), \(j), \(k)) kept")
                    }
                }
            }
        }
        #expect(missedBody == 0)
        #expect(tableCount == 88 * 3 * 12 && tableFar > tableCount / 3)
        #expect(tableKept < tableCount / 2, "\(tableKept) of \(tableCount) table voxels kept")
        // Without couch removal the touching table is part of the body.
        var keepCouch = BodyMask.Options()
        keepCouch.couchOpening = 0
        let withTable = BodyMask.compute(Volume(grid: g, voxels: voxels, affine: .identity), options: keepCouch)
        #expect(table.indices.filter { table[$0] && withTable[$0] }.count == tableCount)
    }

    /// Several objects: two "legs" (cylinders of 42 mL each, 12 mm apart) both kept, a 4 mL blob dropped
    /// (below 20 mL), at 1.5 × 1.5 × 3 mm voxels.
    @Test func twoLegsKeptSmallBlobDropped() {
        let g = GridSize(72, 40, 20)
        let spacing = SIMD3(1.5, 1.5, 3.0)
        var voxels = [Float](repeating: 0, count: g.count)
        func inLeg(_ i: Int, _ j: Int, _ cx: Double) -> Bool {
            let x = (Double(i) - cx) * spacing.x, y = (Double(j) - 20) * spacing.y
            return x * x + y * y <= 15 * 15   // radius 15 mm: π·225·60 mm = 42 mL over 20 slices
        }
        func inBlob(_ i: Int, _ j: Int, _ k: Int) -> Bool {
            let x = (Double(i) - 64) * spacing.x, y = (Double(j) - 6) * spacing.y, z = (Double(k) - 10) * spacing.z
            return x * x + y * y + z * z <= 10 * 10   // 4.2 mL
        }
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    let v = g.index(i, j, k)
                    let tissue = inLeg(i, j, 12) || inLeg(i, j, 40) || inBlob(i, j, k)
                    voxels[v] = tissue ? hashValue(v, seed: 5, 200, 260) : hashValue(v, seed: 6, 0, 20)
                }
            }
        }
        let mask = BodyMask.compute(Volume(grid: g, voxels: voxels, affine: .scaling(spacing)))
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    let v = g.index(i, j, k)
                    if inLeg(i, j, 12) || inLeg(i, j, 40) { #expect(mask[v]) }
                    if inBlob(i, j, k) { #expect(!mask[v]) }
                }
            }
        }
        // The gap between the legs (12 mm, more than the 6 mm the closing bridges) stays open.
        #expect(!mask[g.index(25, 20, 10)] && !mask[g.index(26, 20, 10)])
    }

    /// Bias field and dark tissue: a body whose signal falls from 400 to 130 across it (a receive coil on one side),
    /// with a 1 mm rim of dark skin (signal 20, as short-T2 tissue) and dark bone inside (signal 8, as the
    /// background noise): every voxel of it is in the mask. With Otsu's threshold itself (the former rule) the
    /// weak side of the body is lost.
    @Test func biasFieldAndDarkTissueStayInside() {
        let g = GridSize(80, 64, 24)
        var voxels = [Float](repeating: 0, count: g.count)
        var body = [Bool](repeating: false, count: g.count)
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    let v = g.index(i, j, k)
                    let x = (Double(i) - 39.5) / 34, y = (Double(j) - 31.5) / 26
                    let r = (x * x + y * y).squareRoot()
                    var value = hashValue(v, seed: 7, 0, 16)
                    if r <= 1 {
                        body[v] = true
                        let bias = Float(400 - 270 * (x + 1) / 2)
                        value = r > 1 - 1.0 / 34 ? 20 : bias * hashValue(v, seed: 8, 0.9, 1.1)
                        let bx = Double(i) - 39.5, by = Double(j) - 31.5
                        if bx * bx + by * by <= 36 { value = hashValue(v, seed: 9, 0, 16) }
                    }
                    voxels[v] = value
                }
            }
        }
        let volume = Volume(grid: g, voxels: voxels, affine: .identity)
        let mask = BodyMask.compute(volume)
        #expect(body.indices.filter { body[$0] && !mask[$0] }.isEmpty)
        var otsu = BodyMask.Options()
        otsu.mrThresholdFraction = 1
        otsu.margin = 0
        let former = BodyMask.compute(volume, options: otsu)
        #expect(body.indices.filter { body[$0] && !former[$0] }.count > 100)
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
        // scipy: the voxelised ellipsoid (0.27836) dilated by the 2 mm ball is 0.29752 of the grid (a convex body:
        // the closing adds nothing).
        #expect(abs(fraction - 0.29752) < 1e-5, "\(fraction)")
    }
}
