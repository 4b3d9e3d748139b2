import NIfTI

/// The body outline of a head/body scan, as SynthRAD's preprocessing computes it: Otsu threshold, the largest
/// 3-D connected component (6-connectivity), hole filling (3-D background flood fill from the border, then 2-D
/// per axial slice), and a small dilation. All passes are iterative (explicit queues), never recursive.
public enum BodyMask {
    /// Tuning of the mask; the defaults are what MR2CT uses everywhere (training, conversion, evaluation).
    public struct Options: Hashable, Sendable {
        /// Fill 2-D holes in each axial slice (closed rings such as the airways in a section).
        public var fillHolesPerSlice = true
        /// Dilation passes with the 6-neighbourhood (each grows the mask by one voxel).
        public var dilation = 1
        /// Histogram bins for Otsu's method (as scikit-image's `threshold_otsu`).
        public var bins = 256
        public init() {}
    }

    /// Otsu threshold, largest connected component, hole filling, small dilation (SynthRAD preprocessing).
    /// The result is on the volume's own grid, i fastest.
    public static func compute(_ volume: Volume) -> [Bool] {
        compute(volume, options: Options())
    }

    public static func compute(_ volume: Volume, options: Options) -> [Bool] {
        let grid = volume.grid
        guard grid.count > 0 else { return [] }
        let threshold = otsuThreshold(volume.voxels, bins: options.bins)
        var mask = volume.voxels.map { $0 > threshold }
        // In a T1-weighted head the scalp shell can be cut off from the brain by dark bone and CSF, and be the
        // smaller of the two: components of at least a quarter of the largest are kept too, so that hole filling
        // then closes the skull between them. (A CT's table or stray blobs are far smaller.)
        keepLargestComponent(&mask, grid: grid, alsoKeepingComponentsOfAtLeast: 0.25)
        fillHoles3D(&mask, grid: grid)
        if options.fillHolesPerSlice {
            let axis = CanonicalOrientation(grid: grid, affine: volume.affine)?.sourceAxis[2] ?? 2
            fillHoles2D(&mask, grid: grid, sliceAxis: axis)
        }
        for _ in 0..<max(0, options.dilation) { dilate(&mask, grid: grid) }
        return mask
    }

    /// Otsu's threshold (Otsu 1979): the bin centre maximising the between-class variance of a `bins`-bin
    /// histogram, exactly as scikit-image's `threshold_otsu` for float images; voxels strictly above are
    /// foreground. Robustness for real scans: CT-like volumes (minimum ≤ −900) are clipped below at −1024 HU,
    /// so a −3024 field-of-view padding falls into the air class, and values above the 99.9th percentile
    /// are clipped so a few hot voxels do not squeeze all tissue into one bin.
    public static func otsuThreshold(_ voxels: [Float], bins: Int = 256) -> Float {
        guard var lo = voxels.min(), voxels.count > 1 else { return voxels.first ?? 0 }
        if lo <= -900 { lo = max(lo, -1024) }
        var copy = voxels
        var hi = Float(copy.withUnsafeMutableBufferPointer { Statistics.percentile($0, 99.9) })
        if hi <= lo { hi = voxels.max() ?? lo }
        if hi <= lo { return lo }
        return otsu(voxels, lower: lo, upper: hi, bins: bins)
    }

    /// Otsu on the histogram of `voxels` clipped to [lower, upper] (numpy histogram binning, bin centres).
    static func otsu(_ voxels: [Float], lower: Float, upper: Float, bins: Int) -> Float {
        var histogram = [Double](repeating: 0, count: bins)
        let lo = Double(lower), width = (Double(upper) - lo) / Double(bins)
        for v in voxels {
            let x = min(max(Double(v), lo), Double(upper))
            histogram[min(Int((x - lo) / width), bins - 1)] += 1
        }
        let centres = (0..<bins).map { lo + (Double($0) + 0.5) * width }
        // weight1/mean1 over bins ≤ t, weight2/mean2 over bins > t (scikit-image's formulation).
        var weight1 = [Double](repeating: 0, count: bins), mean1 = weight1
        var w = 0.0, s = 0.0
        for b in 0..<bins {
            w += histogram[b]
            s += histogram[b] * centres[b]
            weight1[b] = w
            mean1[b] = w > 0 ? s / w : 0
        }
        var weight2 = [Double](repeating: 0, count: bins), mean2 = weight2
        w = 0
        s = 0
        for b in stride(from: bins - 1, through: 0, by: -1) {
            w += histogram[b]
            s += histogram[b] * centres[b]
            weight2[b] = w
            mean2[b] = w > 0 ? s / w : 0
        }
        var best = 0, bestVariance = -Double.infinity
        for t in 0..<(bins - 1) {
            let d = mean1[t] - mean2[t + 1]
            let variance = weight1[t] * weight2[t + 1] * d * d
            if variance > bestVariance {
                bestVariance = variance
                best = t
            }
        }
        return Float(centres[best])
    }

    /// A copy of a mask with a one-voxel background border, so that face neighbours are plain offsets
    /// (±1, ±rowStride, ±sliceStride) without bounds checks, and the border is one connected background shell.
    struct PaddedMask {
        let grid: GridSize
        let rowStride: Int, sliceStride: Int
        var cells: [UInt8]

        init(_ mask: [Bool], grid: GridSize) {
            self.grid = grid
            rowStride = grid.nx + 2
            sliceStride = (grid.nx + 2) * (grid.ny + 2)
            cells = [UInt8](repeating: 0, count: sliceStride * (grid.nz + 2))
            let rows = interiorRows
            cells.withUnsafeMutableBufferPointer { c in
                mask.withUnsafeBufferPointer { m in
                    for (v, row) in rows.enumerated() {
                        for i in 0..<grid.nx { c[row + i] = m[v * grid.nx + i] ? 1 : 0 }
                    }
                }
            }
        }

        /// The padded index of the first interior cell of each source row (j, k), in source order.
        var interiorRows: [Int] {
            var rows: [Int] = []
            rows.reserveCapacity(grid.ny * grid.nz)
            for k in 0..<grid.nz {
                for j in 0..<grid.ny { rows.append((k + 1) * sliceStride + (j + 1) * rowStride + 1) }
            }
            return rows
        }

        /// Writes the interior back: voxel is set when its cell equals `value`.
        func unpad(into mask: inout [Bool], value: UInt8 = 1) {
            let rows = interiorRows, nx = grid.nx
            cells.withUnsafeBufferPointer { c in
                mask.withUnsafeMutableBufferPointer { m in
                    for (v, row) in rows.enumerated() {
                        for i in 0..<nx { m[v * nx + i] = c[row + i] == value }
                    }
                }
            }
        }

        /// Breadth-first flood from `seed` through cells equal to `from`, setting them to `to`; returns the
        /// number of cells changed. `queue` must hold at least cells.count entries.
        mutating func flood(from seed: Int, matching from: UInt8, setting to: UInt8, queue: UnsafeMutableBufferPointer<Int32>) -> Int {
            let offsets = [1, -1, rowStride, -rowStride, sliceStride, -sliceStride]
            let n = cells.count
            return cells.withUnsafeMutableBufferPointer { c in
                guard c[seed] == from else { return 0 }
                c[seed] = to
                queue[0] = Int32(seed)
                var head = 0, tail = 1
                while head < tail {
                    let v = Int(queue[head])
                    head += 1
                    for o in offsets {
                        let u = v + o
                        if u >= 0 && u < n && c[u] == from {
                            c[u] = to
                            queue[tail] = Int32(u)
                            tail += 1
                        }
                    }
                }
                return tail
            }
        }

        /// Calls `body` with the padded index of every interior cell.
        func forEachInterior(_ body: (Int) -> Void) {
            for row in interiorRows {
                for i in 0..<grid.nx { body(row + i) }
            }
        }
    }

    /// Keeps the largest 6-connected component of `mask`, and with `fraction` > 0 also every component of at least
    /// that fraction of its size (breadth-first floods with one preallocated
    /// queue, so 181×217×181 volumes cannot overflow a stack).
    public static func keepLargestComponent(_ mask: inout [Bool], grid: GridSize,
                                            alsoKeepingComponentsOfAtLeast fraction: Double = 0) {
        var padded = PaddedMask(mask, grid: grid)
        var queue = [Int32](repeating: 0, count: padded.cells.count)
        // Cells: 0 background, 1 unvisited foreground, 2 visited, 3 the largest component so far.
        var bestSeed = -1, bestSize = 0
        var components: [(seed: Int, size: Int)] = []
        queue.withUnsafeMutableBufferPointer { q in
            for row in padded.interiorRows {
                for seed in row..<(row + grid.nx) where padded.cells[seed] == 1 {
                    let size = padded.flood(from: seed, matching: 1, setting: 2, queue: q)
                    if size > bestSize { bestSize = size; bestSeed = seed }
                    if fraction > 0 { components.append((seed, size)) }
                }
            }
            if bestSeed >= 0 { _ = padded.flood(from: bestSeed, matching: 2, setting: 3, queue: q) }
            for c in components where c.seed != bestSeed && Double(c.size) >= fraction * Double(bestSize) {
                _ = padded.flood(from: c.seed, matching: 2, setting: 3, queue: q)
            }
        }
        padded.unpad(into: &mask, value: 3)
    }

    /// Fills every background region not 6-connected to the volume's border (3-D holes).
    public static func fillHoles3D(_ mask: inout [Bool], grid: GridSize) {
        var padded = PaddedMask(mask, grid: grid)
        var queue = [Int32](repeating: 0, count: padded.cells.count)
        // The padding shell is one connected background region touching every border voxel.
        queue.withUnsafeMutableBufferPointer { q in _ = padded.flood(from: 0, matching: 0, setting: 2, queue: q) }
        padded.unpad(into: &mask, value: 2)
        for i in mask.indices { mask[i].toggle() }
    }

    /// Fills, in every slice across source axis `sliceAxis`, the background not 4-connected to the slice border.
    public static func fillHoles2D(_ mask: inout [Bool], grid: GridSize, sliceAxis: Int) {
        let sizes = [grid.nx, grid.ny, grid.nz], strides = [1, grid.nx, grid.nx * grid.ny]
        let (ua, va) = sliceAxis == 0 ? (1, 2) : (sliceAxis == 1 ? (0, 2) : (0, 1))
        let nu = sizes[ua], nv = sizes[va], su = strides[ua], sv = strides[va]
        var outside = [Bool](repeating: false, count: nu * nv)
        var queue = [Int32](repeating: 0, count: nu * nv)
        mask.withUnsafeMutableBufferPointer { m in
            outside.withUnsafeMutableBufferPointer { out in
                queue.withUnsafeMutableBufferPointer { q in
                    for s in 0..<sizes[sliceAxis] {
                        let base = s * strides[sliceAxis]
                        out.initialize(repeating: false)
                        var tail = 0
                        func seed(_ u: Int, _ v: Int) {
                            let p = u + nu * v
                            if !out[p] && !m[base + u * su + v * sv] { out[p] = true; q[tail] = Int32(p); tail += 1 }
                        }
                        for u in 0..<nu { seed(u, 0); seed(u, nv - 1) }
                        for v in 0..<nv { seed(0, v); seed(nu - 1, v) }
                        var head = 0
                        while head < tail {
                            let p = Int(q[head]); head += 1
                            let u = p % nu, v = p / nu
                            if u > 0 { seed(u - 1, v) }
                            if u < nu - 1 { seed(u + 1, v) }
                            if v > 0 { seed(u, v - 1) }
                            if v < nv - 1 { seed(u, v + 1) }
                        }
                        for v in 0..<nv {
                            for u in 0..<nu where !out[u + nu * v] { m[base + u * su + v * sv] = true }
                        }
                    }
                }
            }
        }
    }

    /// Grows the mask by one voxel along the six face neighbours.
    public static func dilate(_ mask: inout [Bool], grid: GridSize) {
        let source = PaddedMask(mask, grid: grid)
        var grown = source
        let r = source.rowStride, z = source.sliceStride
        source.cells.withUnsafeBufferPointer { c in
            grown.cells.withUnsafeMutableBufferPointer { g in
                source.forEachInterior { v in
                    if c[v] != 0 {
                        g[v - 1] = 1; g[v + 1] = 1; g[v - r] = 1; g[v + r] = 1; g[v - z] = 1; g[v + z] = 1
                    }
                }
            }
        }
        grown.unpad(into: &mask)
    }

    /// The fraction of `true` voxels.
    public static func fraction(_ mask: [Bool]) -> Double {
        guard !mask.isEmpty else { return 0 }
        var n = 0
        for b in mask where b { n += 1 }
        return Double(n) / Double(mask.count)
    }
}
