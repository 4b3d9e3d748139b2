import Foundation

/// A 4×4 affine transform from voxel indices (i, j, k) to world coordinates (x, y, z) in millimetres, RAS+
/// (NIfTI-1 §"qform/sform": +x Right, +y Anterior, +z Superior; DICOM's LPS negates x and y).
public struct Affine: Hashable, Sendable, CustomStringConvertible {
    /// Rows of the matrix; the last is (0, 0, 0, 1).
    public var rows: [SIMD4<Double>]

    public init(rows: [SIMD4<Double>]) {
        precondition(rows.count == 4, "an affine has four rows")
        self.rows = rows
    }

    /// diag(sx, sy, sz, 1): the ANALYZE / pixdim-only fallback (NIfTI method 1).
    public static func scaling(_ spacing: SIMD3<Double>) -> Affine {
        Affine(rows: [SIMD4(spacing.x, 0, 0, 0), SIMD4(0, spacing.y, 0, 0), SIMD4(0, 0, spacing.z, 0), SIMD4(0, 0, 0, 1)])
    }

    public static let identity = Affine.scaling(SIMD3(1, 1, 1))

    /// Element (row r, column c).
    @inlinable public subscript(r: Int, c: Int) -> Double {
        get { rows[r][c] }
        set { rows[r][c] = newValue }
    }

    /// World coordinates of voxel index `ijk` (fractional indices allowed).
    public func apply(_ ijk: SIMD3<Double>) -> SIMD3<Double> {
        let v = SIMD4(ijk.x, ijk.y, ijk.z, 1)
        return SIMD3((rows[0] * v).sum(), (rows[1] * v).sum(), (rows[2] * v).sum())
    }

    /// The matrix product self · other.
    public func concatenating(_ other: Affine) -> Affine {
        var out = [SIMD4<Double>](repeating: .zero, count: 4)
        for r in 0..<4 {
            for c in 0..<4 {
                var s = 0.0
                for k in 0..<4 { s += rows[r][k] * other.rows[k][c] }
                out[r][c] = s
            }
        }
        return Affine(rows: out)
    }

    /// The inverse transform (world to voxel), by Gauss–Jordan elimination with partial pivoting;
    /// nil when the linear part is singular.
    public var inverse: Affine? {
        var a = rows.map { [$0.x, $0.y, $0.z, $0.w] }
        var inv = (0..<4).map { r in (0..<4).map { c in r == c ? 1.0 : 0.0 } }
        for col in 0..<4 {
            guard let pivot = (col..<4).max(by: { abs(a[$0][col]) < abs(a[$1][col]) }),
                  abs(a[pivot][col]) > 1e-12 else { return nil }
            a.swapAt(col, pivot)
            inv.swapAt(col, pivot)
            let p = a[col][col]
            for c in 0..<4 { a[col][c] /= p; inv[col][c] /= p }
            for r in 0..<4 where r != col {
                let f = a[r][col]
                if f == 0 { continue }
                for c in 0..<4 { a[r][c] -= f * a[col][c]; inv[r][c] -= f * inv[col][c] }
            }
        }
        return Affine(rows: inv.map { SIMD4($0[0], $0[1], $0[2], $0[3]) })
    }

    /// Column norms of the linear part: the voxel spacing the affine implies.
    public var columnNorms: SIMD3<Double> {
        var n = SIMD3<Double>.zero
        for c in 0..<3 {
            n[c] = (rows[0][c] * rows[0][c] + rows[1][c] * rows[1][c] + rows[2][c] * rows[2][c]).squareRoot()
        }
        return n
    }

    /// Axis codes of the voxel axes: for each of i, j, k the world direction it points to most
    /// (nibabel's `aff2axcodes`), e.g. "RAS" or "LPS". Oblique axes go to the nearest world axis.
    public var orientationCode: String {
        let positive: [Character] = ["R", "A", "S"]
        let negative: [Character] = ["L", "P", "I"]
        var used = Set<Int>()
        var code = ""
        // Assign each voxel axis the world axis with the largest absolute component, greedily by magnitude,
        // so that every world axis is used once even for strongly oblique matrices.
        var assignment = [Int](repeating: -1, count: 3)
        var pairs: [(mag: Double, voxel: Int, world: Int)] = []
        for c in 0..<3 { for r in 0..<3 { pairs.append((abs(rows[r][c]), c, r)) } }
        for p in pairs.sorted(by: { $0.mag > $1.mag }) where assignment[p.voxel] < 0 && !used.contains(p.world) {
            assignment[p.voxel] = p.world
            used.insert(p.world)
        }
        for c in 0..<3 {
            let w = assignment[c]
            code.append(rows[w][c] >= 0 ? positive[w] : negative[w])
        }
        return code
    }

    public var description: String {
        rows.map { r in "[" + (0..<4).map { String(format: "%.6g", r[$0]) }.joined(separator: ", ") + "]" }
            .joined(separator: "\n")
    }
}
