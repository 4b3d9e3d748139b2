import NIfTI

/// Binary morphology with a ball of a radius in millimetres on an anisotropic voxel grid (Serra, "Image Analysis
/// and Mathematical Morphology", 1982; the same operations as scipy.ndimage's `binary_dilation` /
/// `binary_erosion` with that ball as the structuring element).
///
/// The ball holds the offsets (di, dj, dk) with (di·sx)² + (dj·sy)² + (dk·sz)² ≤ r²·(1 + 10⁻⁶) (the tolerance
/// keeps spacings stored as 1.9999999 mm from losing the ball's poles). It is stored as rows along i: for each
/// (dj, dk) the half width of its run, so that a stamp is a few short runs.
///
/// Dilation stamps the ball only at the mask's boundary voxels (those with a face neighbour outside the mask or
/// outside the grid): for a ball, which is symmetric and shrinks monotonically towards its axes, every voxel of
/// p ⊕ B outside the mask is reached from the last mask voxel on a monotone lattice path from p, and that voxel
/// is a boundary voxel whose ball contains it. Erosion is the dual: the ball is cleared around every background
/// voxel next to the mask, and around the virtual voxels just outside the grid next to mask voxels on its faces
/// (outside the grid counts as background, scipy's `border_value=0`). The cost is the surface times the ball,
/// not the volume times the ball.
struct BallElement: Sendable {
    /// The largest offset along i, j and k.
    let reach: (i: Int, j: Int, k: Int)
    /// For each (dj, dk) row of the ball, the half width w of its run of offsets −w…w along i.
    let rows: [(dj: Int, dk: Int, halfWidth: Int)]

    /// The ball of `radius` mm on a grid of `spacing` mm; a radius ≤ 0 (or non-finite) gives the single voxel.
    init(radius: Double, spacing: SIMD3<Double>) {
        let tolerance = 1 + 1e-6
        guard radius.isFinite, radius > 0 else {
            reach = (0, 0, 0)
            rows = [(0, 0, 0)]
            return
        }
        let s = SIMD3(spacing.x.isFinite && spacing.x > 0 ? spacing.x : 1,
                      spacing.y.isFinite && spacing.y > 0 ? spacing.y : 1,
                      spacing.z.isFinite && spacing.z > 0 ? spacing.z : 1)
        // Never more than 64 voxels either way (a 0.01 mm spacing would otherwise ask for huge balls).
        func axisReach(_ si: Double) -> Int { min(64, Int((radius / si * tolerance).rounded(.down))) }
        let ni = axisReach(s.x), nj = axisReach(s.y), nk = axisReach(s.z)
        let limit = radius * radius * tolerance
        var rows: [(dj: Int, dk: Int, halfWidth: Int)] = []
        for dk in -nk...nk {
            for dj in -nj...nj {
                let y = Double(dj) * s.y, z = Double(dk) * s.z
                guard y * y + z * z <= limit else { continue }
                var w = 0
                while w < ni {
                    let x = Double(w + 1) * s.x
                    if x * x + y * y + z * z <= limit { w += 1 } else { break }
                }
                rows.append((dj, dk, w))
            }
        }
        reach = (ni, nj, nk)
        self.rows = rows
    }

    /// True when the ball is the single centre voxel (the operations are then the identity).
    var isPoint: Bool { reach == (0, 0, 0) }

    /// Writes `value` into every voxel of the ball centred at (i, j, k) that lies inside the grid; the centre
    /// may lie outside it.
    @inline(__always)
    func stamp(_ cells: UnsafeMutableBufferPointer<UInt8>, _ nx: Int, _ ny: Int, _ nz: Int,
               _ i: Int, _ j: Int, _ k: Int, _ value: UInt8) {
        for row in rows {
            let jj = j + row.dj, kk = k + row.dk
            guard jj >= 0, jj < ny, kk >= 0, kk < nz else { continue }
            let lo = max(0, i - row.halfWidth), hi = min(nx - 1, i + row.halfWidth)
            guard lo <= hi else { continue }
            let base = (kk * ny + jj) * nx
            for x in (base + lo)...(base + hi) { cells[x] = value }
        }
    }
}

/// Ball dilation, erosion, opening and closing of masks stored as bytes (0 / 1), i fastest.
enum Morphology {
    /// Dilation in place: outside the grid counts as background.
    static func dilate(_ cells: inout [UInt8], _ nx: Int, _ ny: Int, _ nz: Int, ball: BallElement) {
        guard !ball.isPoint else { return }
        let source = cells
        let sx = 1, sy = nx, sz = nx * ny
        source.withUnsafeBufferPointer { src in
            cells.withUnsafeMutableBufferPointer { out in
                for k in 0..<nz {
                    for j in 0..<ny {
                        let row = (k * ny + j) * nx
                        for i in 0..<nx where src[row + i] != 0 {
                            let p = row + i
                            let boundary = i == 0 || i == nx - 1 || j == 0 || j == ny - 1 || k == 0 || k == nz - 1
                                || src[p - sx] == 0 || src[p + sx] == 0 || src[p - sy] == 0 || src[p + sy] == 0
                                || src[p - sz] == 0 || src[p + sz] == 0
                            if boundary { ball.stamp(out, nx, ny, nz, i, j, k, 1) }
                        }
                    }
                }
            }
        }
    }

    /// Erosion in place: outside the grid counts as background, so a mask touching a face is eroded there, or,
    /// with `outsideIsMask`, as mask (scipy's `border_value=1`), so a body cut by the field of view is not.
    static func erode(_ cells: inout [UInt8], _ nx: Int, _ ny: Int, _ nz: Int, ball: BallElement,
                      outsideIsMask: Bool = false) {
        guard !ball.isPoint else { return }
        let source = cells
        let sx = 1, sy = nx, sz = nx * ny
        source.withUnsafeBufferPointer { src in
            cells.withUnsafeMutableBufferPointer { out in
                for k in 0..<nz {
                    for j in 0..<ny {
                        let row = (k * ny + j) * nx
                        for i in 0..<nx {
                            let p = row + i
                            if src[p] == 0 {
                                let nextToMask = (i > 0 && src[p - sx] != 0) || (i < nx - 1 && src[p + sx] != 0)
                                    || (j > 0 && src[p - sy] != 0) || (j < ny - 1 && src[p + sy] != 0)
                                    || (k > 0 && src[p - sz] != 0) || (k < nz - 1 && src[p + sz] != 0)
                                if nextToMask { ball.stamp(out, nx, ny, nz, i, j, k, 0) }
                            } else if !outsideIsMask {
                                // The background just outside the grid, next to a mask voxel on a face.
                                if i == 0 { ball.stamp(out, nx, ny, nz, -1, j, k, 0) }
                                if i == nx - 1 { ball.stamp(out, nx, ny, nz, nx, j, k, 0) }
                                if j == 0 { ball.stamp(out, nx, ny, nz, i, -1, k, 0) }
                                if j == ny - 1 { ball.stamp(out, nx, ny, nz, i, ny, k, 0) }
                                if k == 0 { ball.stamp(out, nx, ny, nz, i, j, -1, 0) }
                                if k == nz - 1 { ball.stamp(out, nx, ny, nz, i, j, nz, 0) }
                            }
                        }
                    }
                }
            }
        }
    }

    static func bytes(_ mask: [Bool]) -> [UInt8] { mask.map { $0 ? 1 : 0 } }
    static func bools(_ cells: [UInt8]) -> [Bool] { cells.map { $0 != 0 } }

    /// Dilation of a mask by the ball.
    static func dilate(_ mask: [Bool], grid: GridSize, ball: BallElement) -> [Bool] {
        guard !ball.isPoint else { return mask }
        var cells = bytes(mask)
        dilate(&cells, grid.nx, grid.ny, grid.nz, ball: ball)
        return bools(cells)
    }

    /// Opening (erosion, then dilation): removes what the ball does not fit into. `outsideIsMask` as for `erode`.
    static func open(_ mask: [Bool], grid: GridSize, ball: BallElement, outsideIsMask: Bool = false) -> [Bool] {
        guard !ball.isPoint else { return mask }
        var cells = bytes(mask)
        erode(&cells, grid.nx, grid.ny, grid.nz, ball: ball, outsideIsMask: outsideIsMask)
        dilate(&cells, grid.nx, grid.ny, grid.nz, ball: ball)
        return bools(cells)
    }

    /// Closing (dilation, then erosion) on the grid padded by the ball's reach with background, so that a
    /// mask touching a face is not eroded there: the closing in an unbounded empty space, cut back to the grid
    /// (scipy: `binary_closing` of `np.pad(mask, reach)`, then the padding removed).
    static func close(_ mask: [Bool], grid: GridSize, ball: BallElement) -> [Bool] {
        guard !ball.isPoint else { return mask }
        let (pi, pj, pk) = ball.reach
        let px = grid.nx + 2 * pi, py = grid.ny + 2 * pj, pz = grid.nz + 2 * pk
        var cells = [UInt8](repeating: 0, count: px * py * pz)
        var result = mask
        cells.withUnsafeMutableBufferPointer { c in
            mask.withUnsafeBufferPointer { m in
                for k in 0..<grid.nz {
                    for j in 0..<grid.ny {
                        let src = (k * grid.ny + j) * grid.nx, dst = ((k + pk) * py + j + pj) * px + pi
                        for i in 0..<grid.nx where m[src + i] { c[dst + i] = 1 }
                    }
                }
            }
        }
        dilate(&cells, px, py, pz, ball: ball)
        erode(&cells, px, py, pz, ball: ball)
        cells.withUnsafeBufferPointer { c in
            result.withUnsafeMutableBufferPointer { m in
                for k in 0..<grid.nz {
                    for j in 0..<grid.ny {
                        let dst = (k * grid.ny + j) * grid.nx, src = ((k + pk) * py + j + pj) * px + pi
                        for i in 0..<grid.nx { m[dst + i] = c[src + i] != 0 }
                    }
                }
            }
        }
        return result
    }
}
