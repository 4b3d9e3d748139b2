import NIfTI

/// The body outline of an MR or CT volume: everything of the patient (or object), nothing of the couch.
///
/// The steps, all iterative (explicit queues, no recursion) and spacing-aware (radii and volumes in mm / mL):
/// 1. **Threshold.** MR: a quarter of the tissue's signal level, the median of the voxels above Otsu's threshold
///    (Otsu 1979, `otsuThreshold`), measured from the volume's minimum. Tissue with short T2 (skin, tendon,
///    cortical bone), a weak coil sensitivity (bias field) or partial volume at the edge lies between air and the
///    bulk of the tissue and is kept down to that level, where the Rician noise of air still lies below (meat
///    phantom T2: Otsu 377, tissue median 713, threshold 178; colin27 T1: 50, 89, 22). The level, not Otsu's
///    threshold itself, is scaled: when air and tissue are separated by an empty stretch of the histogram,
///    Otsu's argmax sits at its lower end, right on the noise. CT: −500 HU, halfway between air and water
///    (SynthRAD 2023's CT body masks threshold near −500 HU); a −3024 / −2000 field-of-view padding is air for it.
///    Background enclosed in 3-D (cavities) is filled right away, so steps 2–5 see only the outer surface.
/// 2. **Couch removal (CT only).** The table top and positioning aids are thin shells separated from the body by
///    air, or touching it only along a line: an opening with a ball of `couchOpening` mm (outside the grid
///    counting as body, so the cut ends of a body are not eroded) removes everything thinner than twice that
///    (when it leaves nothing at all, the step is skipped), the components of the opening are chosen as in
///    step 3, and the body's own
///    outline is restored as the thresholded mask within `couchOpening` mm of them (so no more than a rim of
///    that width of a touching table remains, and body parts thinner than 2 × `couchOpening` that stick out more
///    than that from the body are cut there).
/// 3. **Components.** 6-connected components of the mask; the largest is kept, and every other one of at least
///    `minimumComponent` mL (a forearm, the other leg, a second object; a T1 head's scalp shell, cut off from the
///    brain by dark bone and CSF). Noise specks and stray blobs in air are far smaller.
/// 4. **Closing** with a ball of `closing` mm (on the grid padded with air, so a body cut by the field of view is
///    not eroded at the cut): bridges dark gaps in the outline up to twice that wide.
/// 5. **Margin:** a dilation by a ball of `margin` mm. The edge of MR tissue is soft (partial volume, dark skin),
///    and for dose calculation a body voxel outside the mask (set to air) is far worse than an air voxel inside
///    it (the network predicts it); on the meat phantom the margin takes the share of the object (eroded 4 mm)
///    inside the MR mask from 98.8 % to 99.7 %.
/// 6. **Hole filling** (last, so that no step after it can enclose background): background not 6-connected to
///    the grid's border becomes body (3-D), then, in each axial section, background not 4-connected to the
///    section's border (2-D: airways and canals open in 3-D).
/// The same steps run on the MR and on the CT, so that the MR and CT masks of one subject agree (SynthRAD's
/// preprocessing masks the CT with the body outline before training).
public enum BodyMask {
    /// Changes whenever the algorithm's result changes (part of the training slice cache's key).
    public static let revision = 2

    /// Tuning of the mask; the defaults are what MR2CT uses everywhere (training, conversion, evaluation).
    public struct Options: Hashable, Sendable {
        /// MR or CT thresholding and couch removal; nil decides from the volume: CT when its minimum is at or
        /// below −900 (HU), MR otherwise.
        public var modality: Modality? = nil
        /// MR threshold: minimum + this fraction × (tissue level − minimum), the tissue level being the median of
        /// the voxels above Otsu's threshold.
        public var mrThresholdFraction = 0.25
        /// CT threshold in HU (voxels strictly above are body).
        public var ctThreshold: Float = -500
        /// Radius (mm) of the opening that removes the CT couch; 0 disables it. Not applied to MR.
        public var couchOpening = 4.0
        /// Components other than the largest are kept from this volume (mL) on.
        public var minimumComponent = 20.0
        /// Radius (mm) of the closing.
        public var closing = 3.0
        /// Fill 2-D holes in each axial section (closed rings such as the airways in a section).
        public var fillHolesPerSlice = true
        /// Radius (mm) of the final dilation.
        public var margin = 2.0
        /// Histogram bins for Otsu's method (as scikit-image's `threshold_otsu`).
        public var bins = 256
        public init() {}
        public init(modality: Modality?) { self.modality = modality }
    }

    /// The mask with the default options. The result is on the volume's own grid, i fastest.
    public static func compute(_ volume: Volume) -> [Bool] {
        compute(volume, options: Options())
    }

    /// Whether `volume` is treated as CT (`options.modality`, else its minimum at or below −900).
    public static func isCT(_ volume: Volume, options: Options = Options()) -> Bool {
        if let modality = options.modality { return modality == .ct }
        return (volume.voxels.min() ?? 0) <= -900
    }

    /// The intensity threshold of step 1 (voxels strictly above it are body).
    public static func threshold(_ volume: Volume, options: Options = Options()) -> Float {
        if isCT(volume, options: options) { return options.ctThreshold }
        // The tissue level: the median of the voxels above Otsu's threshold. Measured from the volume's minimum
        // (MR has no absolute zero); a constant volume (nothing above) has no body.
        let otsu = otsuThreshold(volume.voxels, bins: options.bins)
        var above = volume.voxels.filter { $0 > otsu }
        guard !above.isEmpty else { return otsu }
        let level = above.withUnsafeMutableBufferPointer { Statistics.percentile($0, 50) }
        let lowest = Double(volume.voxels.min() ?? 0)
        return Float(lowest + (level - lowest) * options.mrThresholdFraction)
    }

    public static func compute(_ volume: Volume, options: Options) -> [Bool] {
        let grid = volume.grid
        guard grid.count > 0, volume.voxels.count == grid.count else { return [] }
        let spacing = volume.affine.columnNorms
        let voxelVolume = spacing.x * spacing.y * spacing.z
        let minimumVoxels = voxelVolume.isFinite && voxelVolume > 0
            ? options.minimumComponent * 1000 / voxelVolume : Double.infinity
        let ct = isCT(volume, options: options)
        let t = threshold(volume, options: options)
        var mask = volume.voxels.map { $0 > t }
        // Cavities first: the morphology below then works on the outer surface only (a T1 head's dark CSF and
        // bone, or a CT's lungs and bowel gas, would otherwise multiply the surface it stamps balls on).
        fillHoles3D(&mask, grid: grid)
        if ct && options.couchOpening > 0 {
            let ball = BallElement(radius: options.couchOpening, spacing: spacing)
            // Outside the grid counts as body for the erosion: a body cut by the field of view is not eroded there.
            var opened = Morphology.open(mask, grid: grid, ball: ball, outsideIsMask: true)
            // A volume too thin for the ball (or a body thinner than it) keeps its threshold mask.
            if opened.contains(true) {
                keepComponents(&opened, grid: grid, minimumVoxels: minimumVoxels)
                let near = Morphology.dilate(opened, grid: grid, ball: ball)
                for i in mask.indices where !near[i] { mask[i] = false }
            }
        }
        keepComponents(&mask, grid: grid, minimumVoxels: minimumVoxels)
        mask = Morphology.close(mask, grid: grid, ball: BallElement(radius: options.closing, spacing: spacing))
        mask = Morphology.dilate(mask, grid: grid, ball: BallElement(radius: options.margin, spacing: spacing))
        fillHoles3D(&mask, grid: grid)
        if options.fillHolesPerSlice {
            let axis = CanonicalOrientation(grid: grid, affine: volume.affine)?.sourceAxis[2] ?? 2
            fillHoles2D(&mask, grid: grid, sliceAxis: axis)
        }
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
    }

    /// Keeps the largest 6-connected component of `mask` and every other one of at least `minimumVoxels` voxels
    /// (breadth-first floods with one preallocated queue, so 181×217×181 volumes cannot overflow a stack).
    public static func keepComponents(_ mask: inout [Bool], grid: GridSize, minimumVoxels: Double = .infinity) {
        var padded = PaddedMask(mask, grid: grid)
        var queue = [Int32](repeating: 0, count: padded.cells.count)
        // Cells: 0 background, 1 unvisited foreground, 2 visited, 3 kept.
        var bestSeed = -1, bestSize = 0
        var components: [(seed: Int, size: Int)] = []
        queue.withUnsafeMutableBufferPointer { q in
            for row in padded.interiorRows {
                for seed in row..<(row + grid.nx) where padded.cells[seed] == 1 {
                    let size = padded.flood(from: seed, matching: 1, setting: 2, queue: q)
                    if size > bestSize { bestSize = size; bestSeed = seed }
                    components.append((seed, size))
                }
            }
            for c in components where c.seed == bestSeed || Double(c.size) >= minimumVoxels {
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

    /// The fraction of `true` voxels.
    public static func fraction(_ mask: [Bool]) -> Double {
        guard !mask.isEmpty else { return 0 }
        var n = 0
        for b in mask where b { n += 1 }
        return Double(n) / Double(mask.count)
    }
}
