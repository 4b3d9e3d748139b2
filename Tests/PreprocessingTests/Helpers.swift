import Foundation
import NIfTI
@testable import Preprocessing
import TestSupport

/// The committed nibabel / scikit-image reference values (make_fixtures.py).
struct Reference: Decodable {
    struct Orientation: Decodable { var name: String; var affine: [[Double]]; var worldAxis: [Int]; var sign: [Int]; var code: String }
    struct Otsu: Decodable { var name: String; var values: [Float]; var threshold: Float }
    struct Percentile: Decodable { var p: Double; var value: Double }
    var orientation: [Orientation]
    var otsu: [Otsu]
    var percentileValues: [Float]
    var percentiles: [Percentile]

    static func load() throws -> Reference {
        let url = TestSupport.fixturesDirectory.appendingPathComponent("preprocessing/reference.json")
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }
}

extension Affine {
    init(_ m: [[Double]]) {
        self.init(rows: m.map { SIMD4($0[0], $0[1], $0[2], $0[3]) })
    }
}

/// A rotation by `degrees` about world axis `axis` as an affine.
func rotation(axis: Int, degrees: Double) -> Affine {
    let t = degrees * Double.pi / 180, c = cos(t), s = sin(t)
    var m = [[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    let (a, b) = [(1, 2), (0, 2), (0, 1)][axis]
    m[a][a] = c; m[a][b] = -s; m[b][a] = s; m[b][b] = c
    return Affine(m)
}

/// A deterministic pseudo-random Float in [lo, hi) for voxel `i` (no global state).
func hashValue(_ i: Int, seed: UInt64, _ lo: Float, _ hi: Float) -> Float {
    var z = UInt64(truncatingIfNeeded: i) &+ seed &* 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    return lo + (hi - lo) * Float(z >> 40) * 0x1p-24
}

/// A canonical RAS volume and the same physical image stored with another axis order and flips.
struct OrientedCase: CustomStringConvertible {
    var name: String
    var volume: Volume

    var description: String { "\(name) \(volume.grid)" }

    /// `ras` re-stored so that source axis `sourceAxis[a]` runs along canonical axis a, backwards when
    /// `flipped[a]`, then (optionally) tilted by a small world rotation that keeps the nearest axes.
    static func restore(_ ras: Volume, name: String, sourceAxis: [Int], flipped: [Bool], tilt: Affine? = nil) -> OrientedCase {
        let c = [ras.grid.nx, ras.grid.ny, ras.grid.nz]
        var s = [0, 0, 0]
        for a in 0..<3 { s[sourceAxis[a]] = c[a] }
        let grid = GridSize(s[0], s[1], s[2])
        var voxels = [Float](repeating: 0, count: grid.count)
        for k in 0..<s[2] {
            for j in 0..<s[1] {
                for i in 0..<s[0] {
                    let src = [i, j, k]
                    var can = [0, 0, 0]
                    for a in 0..<3 { can[a] = flipped[a] ? c[a] - 1 - src[sourceAxis[a]] : src[sourceAxis[a]] }
                    voxels[grid.index(i, j, k)] = ras[can[0], can[1], can[2]]
                }
            }
        }
        // Q maps source index to canonical index: A_source = A_ras · Q.
        var q = [[0.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
        for a in 0..<3 {
            q[a][sourceAxis[a]] = flipped[a] ? -1 : 1
            q[a][3] = flipped[a] ? Double(c[a] - 1) : 0
        }
        var affine = ras.affine.concatenating(Affine(q))
        if let tilt { affine = tilt.concatenating(affine) }
        return OrientedCase(name: name, volume: Volume(grid: grid, voxels: voxels, affine: affine))
    }
}

/// A RAS test volume of CT-like values strictly inside the default window.
func makeRASVolume(_ nx: Int, _ ny: Int, _ nz: Int, spacing: SIMD3<Double> = SIMD3(1, 1.5, 2.5), seed: UInt64 = 1) -> Volume {
    let grid = GridSize(nx, ny, nz)
    var affine = Affine.scaling(spacing)
    affine[0, 3] = -12.5
    affine[1, 3] = 30.25
    affine[2, 3] = -7
    let voxels = (0..<grid.count).map { hashValue($0, seed: seed, -1000, 2990) }
    return Volume(grid: grid, voxels: voxels, affine: affine)
}

/// RAS, LPS, a permuted (PIR-like) and two oblique versions of one physical image.
func orientedCases(_ ras: Volume) -> [OrientedCase] {
    [
        OrientedCase(name: "RAS", volume: ras),
        .restore(ras, name: "LPS", sourceAxis: [0, 1, 2], flipped: [true, true, false]),
        .restore(ras, name: "PIR", sourceAxis: [2, 0, 1], flipped: [false, true, true]),
        .restore(ras, name: "oblique RAS", sourceAxis: [0, 1, 2], flipped: [false, false, false],
                 tilt: rotation(axis: 0, degrees: 20).concatenating(rotation(axis: 2, degrees: -12))),
        .restore(ras, name: "oblique LIA", sourceAxis: [0, 2, 1], flipped: [true, false, true],
                 tilt: rotation(axis: 1, degrees: 30)),
    ]
}
