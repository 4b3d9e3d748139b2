import NIfTI

/// The axis permutation and flips that take a volume's voxel grid to the canonical RAS grid: canonical axis 0
/// increases towards Right, 1 towards Anterior, 2 towards Superior. Oblique affines go to the nearest axes,
/// exactly as nibabel's `io_orientation` chooses them (polar decomposition of the column-normalised linear part,
/// then, input axis by input axis, the output axis of largest magnitude not yet taken). Only voxels are
/// permuted: no interpolation, so the inverse is exact.
public struct CanonicalOrientation: Hashable, Sendable {
    /// The source grid.
    public let sourceGrid: GridSize
    /// For canonical axis a (R, A, S): the source voxel axis (0 = i, 1 = j, 2 = k) that runs along it.
    public let sourceAxis: [Int]
    /// For canonical axis a: true when the source axis runs the opposite way (e.g. L for R).
    public let flipped: [Bool]

    /// The orientation of `grid` under `affine`; nil when the affine's linear part is singular.
    public init?(grid: GridSize, affine: Affine) {
        guard let axes = CanonicalOrientation.ioOrientation(affine) else { return nil }
        var sourceAxis = [0, 0, 0], flipped = [false, false, false]
        for input in 0..<3 {
            sourceAxis[axes[input].world] = input
            flipped[axes[input].world] = axes[input].sign < 0
        }
        self.sourceGrid = grid
        self.sourceAxis = sourceAxis
        self.flipped = flipped
    }

    /// nibabel's `aff2axcodes` of the source, e.g. "LPS".
    public var sourceCode: String {
        var code = Array(repeating: Character("?"), count: 3)
        let positive: [Character] = ["R", "A", "S"], negative: [Character] = ["L", "P", "I"]
        for a in 0..<3 { code[sourceAxis[a]] = flipped[a] ? negative[a] : positive[a] }
        return String(code)
    }

    /// Size of the source grid along source axis `axis`.
    @inlinable func sourceSize(_ axis: Int) -> Int {
        axis == 0 ? sourceGrid.nx : (axis == 1 ? sourceGrid.ny : sourceGrid.nz)
    }

    /// The canonical grid: source sizes permuted.
    public var canonicalGrid: GridSize {
        GridSize(sourceSize(sourceAxis[0]), sourceSize(sourceAxis[1]), sourceSize(sourceAxis[2]))
    }

    /// Linear-index arithmetic: source index of canonical (a, b, c) = base + a·strides[0] + b·strides[1] + c·strides[2].
    public var linearMap: (base: Int, strides: [Int]) {
        let sourceStrides = [1, sourceGrid.nx, sourceGrid.nx * sourceGrid.ny]
        var base = 0
        var strides = [0, 0, 0]
        for a in 0..<3 {
            let s = sourceAxis[a]
            if flipped[a] {
                base += (sourceSize(s) - 1) * sourceStrides[s]
                strides[a] = -sourceStrides[s]
            } else {
                strides[a] = sourceStrides[s]
            }
        }
        return (base, strides)
    }

    /// The source linear index of canonical voxel (a, b, c).
    public func sourceIndex(_ a: Int, _ b: Int, _ c: Int) -> Int {
        let m = linearMap
        return m.base + a * m.strides[0] + b * m.strides[1] + c * m.strides[2]
    }

    /// The voxel-to-world affine of the canonical grid (the source affine composed with the permutation/flip).
    public func canonicalAffine(from sourceAffine: Affine) -> Affine {
        // Canonical index c maps to source index s = P·c + t.
        var p = Affine(rows: [SIMD4(0, 0, 0, 0), SIMD4(0, 0, 0, 0), SIMD4(0, 0, 0, 0), SIMD4(0, 0, 0, 1)])
        for a in 0..<3 {
            let s = sourceAxis[a]
            p[s, a] = flipped[a] ? -1 : 1
            if flipped[a] { p[s, 3] = Double(sourceSize(s) - 1) }
        }
        return sourceAffine.concatenating(p)
    }

    /// Voxel spacing (mm) along canonical axis a, from the affine's column norms.
    public func canonicalSpacing(from sourceAffine: Affine) -> SIMD3<Double> {
        let n = sourceAffine.columnNorms
        return SIMD3(n[sourceAxis[0]], n[sourceAxis[1]], n[sourceAxis[2]])
    }

    /// nibabel `io_orientation` for a 3-D affine: for each input (voxel) axis, the output (world) axis and
    /// its sign. nil when the linear part is singular.
    static func ioOrientation(_ affine: Affine) -> [(world: Int, sign: Int)]? {
        // Column-normalised linear part RS.
        var m = [[Double]](repeating: [0, 0, 0], count: 3)
        let norms = affine.columnNorms
        for c in 0..<3 {
            let z = norms[c] == 0 ? 1 : norms[c]
            for r in 0..<3 { m[r][c] = affine[r, c] / z }
        }
        guard var polar = polarFactor(m) else { return nil }
        var result: [(world: Int, sign: Int)] = []
        for input in 0..<3 {
            var best = 0
            for r in 1..<3 where abs(polar[r][input]) > abs(polar[best][input]) { best = r }
            guard polar[best][input] != 0 else { return nil }
            result.append((best, polar[best][input] < 0 ? -1 : 1))
            for c in 0..<3 { polar[best][c] = 0 }
        }
        return result
    }

    /// The orthogonal factor U·Vᵀ of the polar decomposition of a non-singular 3×3 matrix, by Newton's
    /// iteration X ← (X + X⁻ᵀ)/2 (Higham 1986), which converges quadratically to the same matrix SVD gives.
    static func polarFactor(_ m: [[Double]]) -> [[Double]]? {
        var x = m
        for _ in 0..<100 {
            guard let inv = inverse3(x) else { return nil }
            var next = x
            var change = 0.0
            for r in 0..<3 {
                for c in 0..<3 {
                    next[r][c] = 0.5 * (x[r][c] + inv[c][r])
                    change = max(change, abs(next[r][c] - x[r][c]))
                }
            }
            x = next
            if change < 1e-15 { break }
        }
        return x
    }

    static func inverse3(_ m: [[Double]]) -> [[Double]]? {
        let a = m[0][0], b = m[0][1], c = m[0][2]
        let d = m[1][0], e = m[1][1], f = m[1][2]
        let g = m[2][0], h = m[2][1], i = m[2][2]
        let co00 = e * i - f * h, co01 = -(d * i - f * g), co02 = d * h - e * g
        let det = a * co00 + b * co01 + c * co02
        let scale = max(abs(a), abs(b), abs(c), abs(d), abs(e), abs(f), abs(g), abs(h), abs(i))
        guard det.isFinite, abs(det) > 1e-12 * scale * scale * scale else { return nil }
        return [
            [co00 / det, -(b * i - c * h) / det, (b * f - c * e) / det],
            [co01 / det, (a * i - c * g) / det, -(a * f - c * d) / det],
            [co02 / det, -(a * h - b * g) / det, (a * e - b * d) / det],
        ]
    }
}
