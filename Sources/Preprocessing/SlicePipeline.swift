import NIfTI

/// A volume reoriented to canonical (RAS), normalised, with everything needed to invert.
///
/// It holds the normalised voxels in slice order (one source-resolution image per slice of the plane); the
/// network inputs (context channels, resampled, padded/cropped) are built on demand by `inputSlice(_:)`.
public struct PreparedVolume: Sendable {
    public let configuration: PreprocessingConfiguration
    public let modality: Modality
    /// The source grid, affine and header: a reassembled volume carries exactly these.
    public let sourceGrid: GridSize
    public let sourceAffine: Affine
    public let sourceHeader: NIfTIHeader
    public let orientation: CanonicalOrientation
    public let layout: PlaneLayout
    public let geometry: InPlaneGeometry
    /// The intensity map applied (CT window, or this volume's MR percentiles / z-score).
    public let intensityMap: IntensityMap
    /// The normalised background (padding) value: −1 for CT (the window minimum), the normalised volume
    /// minimum for MR (−1 with percentile scaling).
    public let background: Float
    /// The body mask on the SOURCE grid (i fastest).
    public let bodyMask: [Bool]
    /// The source voxels (shared with the source volume, not copied) and what replaces them outside the body (nil:
    /// kept). A slice is gathered, masked and normalised when it is asked for, so a prepared volume costs no
    /// volume-sized memory of its own (conversion holds the MR, its mask and the prediction, nothing more).
    let source: [Float]
    let outside: Float?
    let bodyFractions: [Double]

    public var sliceCount: Int { layout.sliceCount }
    /// Input channels per slice (contextSlices).
    public var channels: Int { configuration.contextSlices }
    /// The configured (training) slice side; the network images of this volume are `inputWidth` × `inputHeight`,
    /// equal to it for the `.trainingSize` field.
    public var sliceSize: Int { configuration.sliceSize }
    /// The network image's columns and rows (the field this volume was prepared for, `SliceField`).
    public var inputWidth: Int { geometry.outputWidth }
    public var inputHeight: Int { geometry.outputHeight }

    /// The same prepared volume without its reference to the source voxels (which it shares with the source
    /// volume), for `reassemble`, which needs only the geometry; `processedSlice` and `inputSlice` must not be
    /// called on the result.
    public func releasingSlices() -> PreparedVolume {
        PreparedVolume(configuration: configuration, modality: modality, sourceGrid: sourceGrid, sourceAffine: sourceAffine,
                       sourceHeader: sourceHeader, orientation: orientation, layout: layout, geometry: geometry,
                       intensityMap: intensityMap, background: background, bodyMask: bodyMask, source: [],
                       outside: outside, bodyFractions: bodyFractions)
    }

    /// The fraction of slice `index` (of its unpadded source area) inside the body mask.
    public func bodyFraction(ofSlice index: Int) -> Double { bodyFractions[index] }

    /// One normalised slice (single channel) at the network's size: resampled, padded/cropped.
    public func processedSlice(_ index: Int) -> [Float] {
        var out = [Float](repeating: background, count: geometry.outputCount)
        out.withUnsafeMutableBufferPointer { writeProcessedSlice(index, into: $0) }
        return out
    }

    /// `processedSlice(index)` written into `output` (at least inputWidth × inputHeight values), without allocating
    /// the result.
    public func writeProcessedSlice(_ index: Int, into output: UnsafeMutableBufferPointer<Float>) {
        let s = min(max(index, 0), sliceCount - 1)
        precondition(source.count == sourceGrid.count, "writeProcessedSlice on a prepared volume without its voxels")
        withUnsafeTemporaryAllocation(of: Float.self, capacity: layout.width * layout.height) { image in
            source.withUnsafeBufferPointer { v in
                bodyMask.withUnsafeBufferPointer { m in
                    layout.forEachSourceIndex(ofSlice: s) { pixel, src in image[pixel] = m[src] ? v[src] : (outside ?? v[src]) }
                }
            }
            intensityMap.normalize(image)
            geometry.forward(UnsafeBufferPointer(image), into: output, background: background)
        }
    }

    /// Network input of slice `index`: channels × inputHeight × inputWidth, row-major, normalised to [-1, 1];
    /// channel c holds slice index + c − channels/2, replicated at the volume's ends.
    public func inputSlice(_ index: Int) -> [Float] {
        var out = [Float](repeating: 0, count: channels * geometry.outputCount)
        out.withUnsafeMutableBufferPointer { writeInput(index, into: $0) }
        return out
    }

    /// `inputSlice(index)` written into `output` (channels × inputHeight × inputWidth values, e.g. one image of a
    /// batch tensor).
    public func writeInput(_ index: Int, into output: UnsafeMutableBufferPointer<Float>) {
        let plane = geometry.outputCount
        precondition(output.count >= channels * plane, "writeInput: \(output.count) values for \(channels) × \(plane)")
        for c in 0..<channels {
            writeProcessedSlice(index + c - channels / 2,
                                into: UnsafeMutableBufferPointer(rebasing: output[(c * plane)..<((c + 1) * plane)]))
        }
    }

    /// Which source pixels of a slice (height × width, row-major) the network image covers: those the inverse
    /// path gives at least half their value from inside the field (all of them for the `.wholeSlice` field; with
    /// `.trainingSize` the ones cropping did not cut away). The same for every slice of the plane.
    public func fieldCoverage() -> [Bool] {
        let ones = [Float](repeating: 1, count: geometry.outputCount)
        var back = [Float](repeating: 0, count: layout.width * layout.height)
        ones.withUnsafeBufferPointer { o in back.withUnsafeMutableBufferPointer { geometry.inverse(o, into: $0, background: 0) } }
        return back.map { $0 >= 0.5 }
    }

    /// The body mask of slice `index` at the network's size (false in padding).
    public func bodyMaskSlice(_ index: Int) -> [Bool] {
        var image = [Float](repeating: 0, count: layout.width * layout.height)
        layout.forEachSourceIndex(ofSlice: index) { pixel, i in if bodyMask[i] { image[pixel] = 1 } }
        var out = [Float](repeating: 0, count: geometry.outputCount)
        image.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { geometry.forward(i, into: $0, background: 0) } }
        return out.map { $0 >= 0.5 }
    }
}

/// The one path between volumes and network slices, used by training and conversion alike: reorient to RAS,
/// body mask, outside the body air (CT) or background (MR) as the configuration says, intensity map, slices of the chosen plane with 2.5-D context, in-plane resampling and
/// pad/crop; and back.
public struct SlicePipeline: Sendable {
    public let configuration: PreprocessingConfiguration

    public init(configuration: PreprocessingConfiguration) {
        self.configuration = configuration
    }

    /// Prepares `volume` as `modality`. Throws on an invalid configuration, an empty volume, non-finite
    /// voxels, or a singular affine (no orientation).
    public func prepare(_ volume: Volume, as modality: Modality) throws -> PreparedVolume {
        try prepare(volume, as: modality, bodyMask: nil)
    }

    /// As `prepare(_:as:)`, reusing a body mask already computed for this volume with `BodyMask.compute` (e.g. when
    /// one MR is prepared for several planes) or given by the user; nil computes it. `field` chooses the network
    /// image: the training size (pad/crop to `sliceSize`) or the whole slice (conversion; never cropped).
    public func prepare(_ volume: Volume, as modality: Modality, bodyMask: [Bool]?,
                        field: SliceField = .trainingSize) throws -> PreparedVolume {
        try configuration.validate()
        func fail(_ reason: String) -> PreprocessingError { PreprocessingError(path: "volume \(volume.grid)", reason: reason) }
        if let bodyMask, bodyMask.count != volume.grid.count {
            throw fail("the body mask has \(bodyMask.count) voxels, the volume \(volume.grid.count)")
        }
        guard volume.grid.count > 0, volume.voxels.count == volume.grid.count else { throw fail("empty volume") }
        guard volume.voxels.allSatisfy(\.isFinite) else { throw fail("volume holds NaN or infinite values") }
        guard let orientation = CanonicalOrientation(grid: volume.grid, affine: volume.affine) else {
            throw fail("the affine is singular, so the volume has no orientation:\n\(volume.affine)".replacingNewlines())
        }
        let canonicalSpacing = orientation.canonicalSpacing(from: volume.affine)
        let layout = PlaneLayout(plane: configuration.plane, orientation: orientation, spacing: canonicalSpacing)
        // Derived sizes are checked before anything is allocated.
        do {
            _ = try configuration.resampledSliceSize(width: layout.width, height: layout.height,
                                                     columnSpacing: layout.columnSpacing, rowSpacing: layout.rowSpacing)
        } catch let error as PreprocessingError { throw fail(error.reason) }
        let mask = bodyMask ?? BodyMask.compute(volume, options: BodyMask.Options(modality: modality))
        let map: IntensityMap = switch modality {
        case .ct: .ctWindow(configuration)
        case .mr: .mr(volume.voxels, mask: mask, normalization: configuration.mrNormalization)
        }
        let background: Float = switch modality {
        case .ct: -1
        case .mr: map.normalize(volume.voxels.min() ?? 0)
        }
        let geometry = InPlaneGeometry(width: layout.width, height: layout.height,
                                       columnSpacing: layout.columnSpacing, rowSpacing: layout.rowSpacing,
                                       targetSpacing: configuration.targetSpacing, field: field,
                                       sliceSize: configuration.sliceSize)
        // Outside the body: air for CT (couch, aids, field-of-view padding), the background (minimum) for MR.
        let outside: Float? = switch modality {
        case .ct: configuration.ctOutsideBody == .air ? -1024 : nil
        case .mr: configuration.mrOutsideBody == .air ? (volume.voxels.min() ?? 0) : nil
        }
        let n = layout.width * layout.height
        var fractions = [Double](repeating: 0, count: layout.sliceCount)
        mask.withUnsafeBufferPointer { m in
            for s in 0..<layout.sliceCount {
                var inside = 0
                layout.forEachSourceIndex(ofSlice: s) { _, src in if m[src] { inside += 1 } }
                fractions[s] = Double(inside) / Double(n)
            }
        }
        return PreparedVolume(configuration: configuration, modality: modality, sourceGrid: volume.grid,
                              sourceAffine: volume.affine, sourceHeader: volume.header, orientation: orientation,
                              layout: layout, geometry: geometry, intensityMap: map, background: background,
                              bodyMask: mask, source: volume.voxels, outside: outside, bodyFractions: fractions)
    }

    /// Predicted slices (each 1 × inputHeight × inputWidth, in [-1, 1], in `modality`'s normalisation: for .ct the
    /// window map) back to a volume on the source grid of `prepared` (same header), values in modality units (HU).
    /// Pixels that cropping cut away get the modality's background (CT: the window minimum). For .mr the
    /// prepared volume's own map is inverted (if it was prepared as MR); otherwise values stay normalised.
    /// `slices` must hold `prepared.sliceCount` images of that size (a programming error otherwise).
    public func reassemble(_ slices: [[Float]], like prepared: PreparedVolume, as modality: Modality) -> Volume {
        precondition(slices.count == prepared.sliceCount,
                     "reassemble: \(slices.count) slices for a volume of \(prepared.sliceCount)")
        var voxels = [Float](repeating: 0, count: prepared.sourceGrid.count)
        let writer = SliceWriter(prepared, as: modality)
        voxels.withUnsafeMutableBufferPointer { out in
            for s in 0..<prepared.sliceCount {
                slices[s].withUnsafeBufferPointer { writer.write(slice: s, from: $0, into: out) }
            }
        }
        return Volume(grid: prepared.sourceGrid, voxels: voxels, affine: prepared.sourceAffine, header: prepared.sourceHeader)
    }
}

/// Writes predicted network images back onto the source grid of a prepared volume one slice at a time (the
/// inverse in-plane geometry and intensity map of `SlicePipeline.reassemble`), reusing one scratch image.
public final class SliceWriter {
    let prepared: PreparedVolume
    let map: IntensityMap?
    let backgroundNormalised: Float
    private var image: [Float]

    public init(_ prepared: PreparedVolume, as modality: Modality) {
        self.prepared = prepared
        map = switch modality {
        case .ct: .ctWindow(prepared.configuration)
        case .mr: prepared.modality == .mr ? prepared.intensityMap : nil
        }
        backgroundNormalised = modality == .ct ? -1 : (prepared.modality == .mr ? prepared.background : -1)
        image = [Float](repeating: 0, count: prepared.layout.width * prepared.layout.height)
    }

    /// Slice `s`'s prediction (inputHeight × inputWidth values) into the volume `output` (source grid, i fastest).
    public func write(slice s: Int, from prediction: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(output.count == prepared.sourceGrid.count)
        write(slice: s, from: prediction) { output[$0] = $1 }
    }

    /// Slice `s`'s prediction (inputHeight × inputWidth values) restored to the source grid: `visit(index, value)`
    /// once for each source voxel of the slice (index on the source grid, i fastest; value in the modality's
    /// units), so a caller can combine the slice into its own storage without a volume-sized buffer.
    public func write(slice s: Int, from prediction: UnsafeBufferPointer<Float>, visit: (Int, Float) -> Void) {
        let layout = prepared.layout, geometry = prepared.geometry
        precondition(prediction.count >= geometry.outputCount,
                     "reassemble: slice \(s) has \(prediction.count) values, not \(geometry.outputCount)")
        image.withUnsafeMutableBufferPointer { img in
            geometry.inverse(prediction, into: img, background: backgroundNormalised)
            if let map { map.denormalize(img) }
            layout.forEachSourceIndex(ofSlice: s) { pixel, dst in visit(dst, img[pixel]) }
        }
    }
}

extension String {
    func replacingNewlines() -> String { split(separator: "\n").joined(separator: " ") }
}
