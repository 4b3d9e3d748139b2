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
        keepLargestComponent(&mask, grid: grid)
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

    /// Keeps only the largest 6-connected component of `mask` (breadth-first labelling with one preallocated
    /// queue, so 181×217×181 volumes cannot overflow a stack).
    public static func keepLargestComponent(_ mask: inout [Bool], grid: GridSize) {
        let n = grid.count
        var label = [Int32](repeating: 0, count: n)
        var queue = [Int32](repeating: 0, count: n)
        var bestLabel: Int32 = 0, bestSize = 0
        var current: Int32 = 0
        mask.withUnsafeBufferPointer { m in
            label.withUnsafeMutableBufferPointer { lab in
                queue.withUnsafeMutableBufferPointer { q in
                    for seed in 0..<n where m[seed] && lab[seed] == 0 {
                        current += 1
                        lab[seed] = current
                        var head = 0, tail = 0
                        q[tail] = Int32(seed); tail += 1
                        while head < tail {
                            let v = Int(q[head]); head += 1
                            forEachNeighbour6(v, grid: grid) { u in
                                if m[u] && lab[u] == 0 {
                                    lab[u] = current
                                    q[tail] = Int32(u); tail += 1
                                }
                            }
                        }
                        if tail > bestSize { bestSize = tail; bestLabel = current }
                    }
                }
            }
        }
        for i in 0..<n { mask[i] = bestLabel != 0 && label[i] == bestLabel }
    }

    /// Fills every background region not 6-connected to the volume's border (3-D holes).
    public static func fillHoles3D(_ mask: inout [Bool], grid: GridSize) {
        let n = grid.count
        var outside = [Bool](repeating: false, count: n)
        var queue = [Int32](repeating: 0, count: n)
        mask.withUnsafeBufferPointer { m in
            outside.withUnsafeMutableBufferPointer { out in
                queue.withUnsafeMutableBufferPointer { q in
                    var tail = 0
                    func seed(_ v: Int) {
                        if !m[v] && !out[v] { out[v] = true; q[tail] = Int32(v); tail += 1 }
                    }
                    for k in 0..<grid.nz {
                        for j in 0..<grid.ny {
                            for i in 0..<grid.nx
                            where i == 0 || j == 0 || k == 0 || i == grid.nx - 1 || j == grid.ny - 1 || k == grid.nz - 1 {
                                seed(grid.index(i, j, k))
                            }
                        }
                    }
                    var head = 0
                    while head < tail {
                        let v = Int(q[head]); head += 1
                        forEachNeighbour6(v, grid: grid) { u in seed(u) }
                    }
                }
            }
        }
        for i in 0..<n where !outside[i] { mask[i] = true }
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
        let source = mask
        source.withUnsafeBufferPointer { m in
            mask.withUnsafeMutableBufferPointer { out in
                for v in 0..<grid.count where m[v] {
                    forEachNeighbour6(v, grid: grid) { out[$0] = true }
                }
            }
        }
    }

    /// Calls `body` with the linear index of each in-grid face neighbour of voxel `v`.
    @inline(__always)
    static func forEachNeighbour6(_ v: Int, grid: GridSize, _ body: (Int) -> Void) {
        let nx = grid.nx, nxy = grid.nx * grid.ny
        let i = v % nx, j = (v / nx) % grid.ny, k = v / nxy
        if i > 0 { body(v - 1) }
        if i < nx - 1 { body(v + 1) }
        if j > 0 { body(v - nx) }
        if j < grid.ny - 1 { body(v + nx) }
        if k > 0 { body(v - nxy) }
        if k < grid.nz - 1 { body(v + nxy) }
    }

    /// The fraction of `true` voxels.
    public static func fraction(_ mask: [Bool]) -> Double {
        guard !mask.isEmpty else { return 0 }
        var n = 0
        for b in mask where b { n += 1 }
        return Double(n) / Double(mask.count)
    }
}
