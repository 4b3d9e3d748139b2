import NIfTI

/// Where the pixels of the 2-D slices of a plane lie in the source volume's linear voxel order.
///
/// Slices are taken on the canonical RAS grid. Each slice is an image of `height` rows × `width` columns,
/// row-major; columns run along the first in-plane canonical axis (R for axial and coronal, A for sagittal),
/// rows run from the top down (A→P for axial, S→I for coronal and sagittal), so that an image shows the
/// anatomy the usual way up. Pixel (slice s, row r, column c) is source voxel
/// `base + s·sliceStride + r·rowStride + c·columnStride`.
public struct PlaneLayout: Hashable, Sendable {
    public let plane: SlicePlane
    /// Number of slices, and the in-plane size of each, in source voxels.
    public let sliceCount: Int, width: Int, height: Int
    /// In-plane pixel spacing (mm) along columns and rows.
    public let columnSpacing: Double, rowSpacing: Double
    public let base: Int, sliceStride: Int, rowStride: Int, columnStride: Int

    public init(plane: SlicePlane, orientation: CanonicalOrientation, spacing: SIMD3<Double>) {
        // (slice axis, column axis, row axis) in canonical RAS axes; rows run backwards along the row axis.
        let (sliceAxis, columnAxis, rowAxis): (Int, Int, Int) = switch plane {
        case .axial: (2, 0, 1)
        case .coronal: (1, 0, 2)
        case .sagittal: (0, 1, 2)
        }
        let grid = orientation.canonicalGrid
        let sizes = [grid.nx, grid.ny, grid.nz]
        let map = orientation.linearMap
        self.plane = plane
        sliceCount = sizes[sliceAxis]
        width = sizes[columnAxis]
        height = sizes[rowAxis]
        columnSpacing = spacing[columnAxis]
        rowSpacing = spacing[rowAxis]
        sliceStride = map.strides[sliceAxis]
        columnStride = map.strides[columnAxis]
        rowStride = -map.strides[rowAxis]
        base = map.base + (sizes[rowAxis] - 1) * map.strides[rowAxis]
    }

    /// The source linear index of pixel (row r, column c) of slice s.
    @inlinable public func sourceIndex(slice s: Int, row r: Int, column c: Int) -> Int {
        base + s * sliceStride + r * rowStride + c * columnStride
    }

    /// `visit(pixel, index)` for every pixel of slice `s` in row-major order: `pixel` = row · width + column in the
    /// slice image, `index` its voxel on the source grid.
    @inlinable public func forEachSourceIndex(ofSlice s: Int, _ visit: (Int, Int) -> Void) {
        for r in 0..<height {
            var index = sourceIndex(slice: s, row: r, column: 0)
            let row = r * width
            for c in 0..<width {
                visit(row + c, index)
                index += columnStride
            }
        }
    }
}

/// Linear interpolation weights from a line of `source` samples to `target` samples covering the same extent
/// (pixel-centre aligned: target pixel p samples source position (p + ½)·source/target − ½, clamped at the edges).
struct LinearResampler: Hashable, Sendable {
    let source: Int, target: Int
    let lower: [Int32], upper: [Int32], weight: [Float]

    init(source: Int, target: Int) {
        self.source = source
        self.target = target
        var lower = [Int32](repeating: 0, count: target), upper = lower
        var weight = [Float](repeating: 0, count: target)
        let scale = Double(source) / Double(target)
        for p in 0..<target {
            let x = min(max((Double(p) + 0.5) * scale - 0.5, 0), Double(source - 1))
            let i0 = min(Int(x.rounded(.down)), source - 1)
            lower[p] = Int32(i0)
            upper[p] = Int32(min(i0 + 1, source - 1))
            weight[p] = Float(x - Double(i0))
        }
        self.lower = lower
        self.upper = upper
        self.weight = weight
    }

    /// Resamples a rows × `source` image along its rows into rows × `target`.
    func resampleRows(_ input: UnsafeBufferPointer<Float>, rows: Int, into output: UnsafeMutableBufferPointer<Float>) {
        lower.withUnsafeBufferPointer { lo in
            upper.withUnsafeBufferPointer { hi in
                weight.withUnsafeBufferPointer { w in
                    for r in 0..<rows {
                        let inRow = r * source, outRow = r * target
                        for p in 0..<target {
                            let a = input[inRow + Int(lo[p])], b = input[inRow + Int(hi[p])]
                            output[outRow + p] = a + w[p] * (b - a)
                        }
                    }
                }
            }
        }
    }

    /// Resamples a `source` × columns image along its columns into `target` × columns.
    func resampleColumns(_ input: UnsafeBufferPointer<Float>, columns: Int, into output: UnsafeMutableBufferPointer<Float>) {
        for p in 0..<target {
            let a = Int(lower[p]) * columns, b = Int(upper[p]) * columns, w = weight[p]
            let outRow = p * columns
            for c in 0..<columns {
                let va = input[a + c], vb = input[b + c]
                output[outRow + c] = va + w * (vb - va)
            }
        }
    }
}

/// How large the network image of a slice is.
public enum SliceField: Hashable, Sendable {
    /// Centred padding or cropping to the configuration's `sliceSize` × `sliceSize` (training: every slice of a
    /// batch has the same size).
    case trainingSize
    /// The whole resampled slice, never cropped: centred background padding to at least `sliceSize` along each
    /// axis (so a slice smaller than the training field is the training image exactly) and to a multiple of 4
    /// (the ResNet generator's two stride-2 stages). Conversion uses this, so no part of the body is lost.
    case wholeSlice
}

/// The in-plane path from a source slice (width × height, at the source pixel spacing) to the network's
/// outputWidth × outputHeight image: optional linear resampling to the target spacing, then centred padding or
/// cropping; and its inverse (cropping away the padding, padding back what was cropped with the background, linear
/// resampling back to the source pixel grid). Without resampling the inverse is exact on every pixel that
/// was not cropped away.
public struct InPlaneGeometry: Hashable, Sendable {
    /// Source slice size.
    public let width: Int, height: Int
    /// Size after resampling (equal to width/height without resampling).
    public let resampledWidth: Int, resampledHeight: Int
    /// The network image's size (columns, rows).
    public let outputWidth: Int, outputHeight: Int
    /// Pixel (x, y) of the resampled image sits at (x + offsetX, y + offsetY) of the output; negative when cropped.
    public let offsetX: Int, offsetY: Int
    let columnResampler: LinearResampler?, rowResampler: LinearResampler?
    let inverseColumnResampler: LinearResampler?, inverseRowResampler: LinearResampler?

    /// The network's side for a square (training) field: `outputWidth`.
    public var size: Int { outputWidth }

    /// A square size × size field (training). `targetSpacing` nil keeps the source pixel spacing.
    public init(width: Int, height: Int, columnSpacing: Double, rowSpacing: Double, targetSpacing: Double?, size: Int) {
        self.init(width: width, height: height, columnSpacing: columnSpacing, rowSpacing: rowSpacing,
                  targetSpacing: targetSpacing, field: .trainingSize, sliceSize: size)
    }

    /// The field `field` for slices of configured side `sliceSize`. `targetSpacing` nil keeps the source spacing.
    public init(width: Int, height: Int, columnSpacing: Double, rowSpacing: Double, targetSpacing: Double?,
                field: SliceField, sliceSize: Int) {
        self.width = width
        self.height = height
        var rw = width, rh = height
        if let t = targetSpacing {
            // Sizes beyond the documented limit are refused by PreprocessingConfiguration.resampledSliceSize
            // before a geometry is made; clamped here only so that a direct caller cannot trap.
            let limit = Double(PreprocessingConfiguration.maximumResampledSide)
            rw = max(1, Int(min(limit, (Double(width) * columnSpacing / t).rounded())))
            rh = max(1, Int(min(limit, (Double(height) * rowSpacing / t).rounded())))
        }
        resampledWidth = rw
        resampledHeight = rh
        switch field {
        case .trainingSize:
            outputWidth = sliceSize
            outputHeight = sliceSize
        case .wholeSlice:
            outputWidth = max(sliceSize, (rw + 3) / 4 * 4)
            outputHeight = max(sliceSize, (rh + 3) / 4 * 4)
        }
        columnResampler = rw == width ? nil : LinearResampler(source: width, target: rw)
        rowResampler = rh == height ? nil : LinearResampler(source: height, target: rh)
        inverseColumnResampler = rw == width ? nil : LinearResampler(source: rw, target: width)
        inverseRowResampler = rh == height ? nil : LinearResampler(source: rh, target: height)
        // Centred: floor((size − n) / 2) pixels before, the rest after (for crops, the same on the other side).
        offsetX = Self.floorHalf(outputWidth - rw)
        offsetY = Self.floorHalf(outputHeight - rh)
    }

    /// Pixels of the network image.
    public var outputCount: Int { outputWidth * outputHeight }

    static func floorHalf(_ n: Int) -> Int { n >= 0 ? n / 2 : -((-n + 1) / 2) }

    /// Source slice (height × width, row-major) → outputHeight × outputWidth, areas outside the image set to
    /// `background`.
    public func forward(_ image: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>, background: Float) {
        precondition(image.count >= width * height && output.count >= outputCount)
        let resampled = resample(image, fromWidth: width, height: height, columns: columnResampler, rows: rowResampler)
        resampled.withUnsafeBufferPointer { r in
            let src = r.count == 0 ? image : r
            UnsafeMutableBufferPointer(rebasing: output[0..<outputCount]).update(repeating: background)
            let x0 = max(0, -offsetX), x1 = min(resampledWidth, outputWidth - offsetX)
            let y0 = max(0, -offsetY), y1 = min(resampledHeight, outputHeight - offsetY)
            guard x0 < x1, y0 < y1 else { return }
            for y in y0..<y1 {
                let o = (y + offsetY) * outputWidth + offsetX, i = y * resampledWidth
                for x in x0..<x1 { output[o + x] = src[i + x] }
            }
        }
    }

    /// outputHeight × outputWidth → source slice (height × width); pixels that were cropped away become `background`.
    public func inverse(_ slice: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>, background: Float) {
        precondition(slice.count >= outputCount && output.count >= width * height)
        let direct = columnResampler == nil && rowResampler == nil
        var region = direct ? [] : [Float](repeating: background, count: resampledWidth * resampledHeight)
        region.withUnsafeMutableBufferPointer { reg in
            let dst = direct ? output : reg
            if direct { UnsafeMutableBufferPointer(rebasing: output[0..<(width * height)]).update(repeating: background) }
            let x0 = max(0, -offsetX), x1 = min(resampledWidth, outputWidth - offsetX)
            let y0 = max(0, -offsetY), y1 = min(resampledHeight, outputHeight - offsetY)
            if x0 < x1, y0 < y1 {
                for y in y0..<y1 {
                    let o = (y + offsetY) * outputWidth + offsetX, i = y * resampledWidth
                    for x in x0..<x1 { dst[i + x] = slice[o + x] }
                }
            }
        }
        if !direct {
            let back = region.withUnsafeBufferPointer { reg in
                resample(reg, fromWidth: resampledWidth, height: resampledHeight,
                         columns: inverseColumnResampler, rows: inverseRowResampler)
            }
            for i in 0..<(width * height) { output[i] = back[i] }
        }
    }

    /// Separable linear resampling; returns [] when neither axis changes (the caller uses its input).
    private func resample(_ image: UnsafeBufferPointer<Float>, fromWidth w: Int, height h: Int,
                          columns: LinearResampler?, rows: LinearResampler?) -> [Float] {
        if columns == nil && rows == nil { return [] }
        let outWidth = columns?.target ?? w
        var horizontal: [Float]
        if let columns {
            horizontal = [Float](repeating: 0, count: outWidth * h)
            horizontal.withUnsafeMutableBufferPointer { columns.resampleRows(image, rows: h, into: $0) }
        } else {
            horizontal = Array(image[0..<(w * h)])
        }
        guard let rows else { return horizontal }
        var out = [Float](repeating: 0, count: outWidth * rows.target)
        horizontal.withUnsafeBufferPointer { hb in
            out.withUnsafeMutableBufferPointer { rows.resampleColumns(hb, columns: outWidth, into: $0) }
        }
        return out
    }
}
