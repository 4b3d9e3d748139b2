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
    let slices: [Float]            // sliceCount × height × width, normalised
    let bodyFractions: [Double]

    public var sliceCount: Int { layout.sliceCount }
    /// Input channels per slice (contextSlices).
    public var channels: Int { configuration.contextSlices }
    public var sliceSize: Int { configuration.sliceSize }

    /// The same prepared volume without its normalised slices (a full volume of memory), for `reassemble`,
    /// which needs only the geometry; `processedSlice` and `inputSlice` must not be called on the result.
    public func releasingSlices() -> PreparedVolume {
        PreparedVolume(configuration: configuration, modality: modality, sourceGrid: sourceGrid, sourceAffine: sourceAffine,
                       sourceHeader: sourceHeader, orientation: orientation, layout: layout, geometry: geometry,
                       intensityMap: intensityMap, background: background, bodyMask: bodyMask, slices: [],
                       bodyFractions: bodyFractions)
    }

    /// The fraction of slice `index` (of its unpadded source area) inside the body mask.
    public func bodyFraction(ofSlice index: Int) -> Double { bodyFractions[index] }

    /// One normalised slice (single channel) at the network's size: resampled, padded/cropped.
    public func processedSlice(_ index: Int) -> [Float] {
        let clampedIndex = min(max(index, 0), sliceCount - 1)
        let n = layout.width * layout.height
        var out = [Float](repeating: background, count: sliceSize * sliceSize)
        slices.withUnsafeBufferPointer { all in
            let image = UnsafeBufferPointer(rebasing: all[(clampedIndex * n)..<((clampedIndex + 1) * n)])
            out.withUnsafeMutableBufferPointer { geometry.forward(image, into: $0, background: background) }
        }
        return out
    }

    /// Network input of slice `index`: channels × sliceSize × sliceSize, row-major, normalised to [-1, 1];
    /// channel c holds slice index + c − channels/2, replicated at the volume's ends.
    public func inputSlice(_ index: Int) -> [Float] {
        let plane = sliceSize * sliceSize
        var out = [Float](repeating: 0, count: channels * plane)
        for c in 0..<channels {
            let s = processedSlice(index + c - channels / 2)
            out.withUnsafeMutableBufferPointer { o in
                s.withUnsafeBufferPointer { sb in
                    _ = UnsafeMutableBufferPointer(rebasing: o[(c * plane)..<((c + 1) * plane)]).update(fromContentsOf: sb)
                }
            }
        }
        return out
    }

    /// The body mask of slice `index` at the network's size (false in padding).
    public func bodyMaskSlice(_ index: Int) -> [Bool] {
        var image = [Float](repeating: 0, count: layout.width * layout.height)
        for r in 0..<layout.height {
            for c in 0..<layout.width where bodyMask[layout.sourceIndex(slice: index, row: r, column: c)] {
                image[r * layout.width + c] = 1
            }
        }
        var out = [Float](repeating: 0, count: sliceSize * sliceSize)
        image.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { geometry.forward(i, into: $0, background: 0) } }
        return out.map { $0 >= 0.5 }
    }
}

/// The one path between volumes and network slices, used by training and conversion alike: reorient to RAS,
/// body mask, intensity map, slices of the chosen plane with 2.5-D context, in-plane resampling and
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

    /// As `prepare(_:as:)`, reusing a body mask already computed for this volume with `BodyMask.compute`
    /// (e.g. when one MR is prepared for several planes); nil computes it.
    public func prepare(_ volume: Volume, as modality: Modality, bodyMask: [Bool]?) throws -> PreparedVolume {
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
        let mask = bodyMask ?? BodyMask.compute(volume)
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
                                       targetSpacing: configuration.targetSpacing, size: configuration.sliceSize)
        let n = layout.width * layout.height
        var slices = [Float](repeating: 0, count: layout.sliceCount * n)
        var fractions = [Double](repeating: 0, count: layout.sliceCount)
        volume.voxels.withUnsafeBufferPointer { v in
            mask.withUnsafeBufferPointer { m in
                slices.withUnsafeMutableBufferPointer { out in
                    for s in 0..<layout.sliceCount {
                        var inside = 0
                        for r in 0..<layout.height {
                            var src = layout.sourceIndex(slice: s, row: r, column: 0)
                            let o = (s * layout.height + r) * layout.width
                            for c in 0..<layout.width {
                                out[o + c] = v[src]
                                if m[src] { inside += 1 }
                                src += layout.columnStride
                            }
                        }
                        fractions[s] = Double(inside) / Double(n)
                    }
                    map.normalize(out)
                }
            }
        }
        return PreparedVolume(configuration: configuration, modality: modality, sourceGrid: volume.grid,
                              sourceAffine: volume.affine, sourceHeader: volume.header, orientation: orientation,
                              layout: layout, geometry: geometry, intensityMap: map, background: background,
                              bodyMask: mask, slices: slices, bodyFractions: fractions)
    }

    /// Predicted slices (each 1 × sliceSize × sliceSize, in [-1, 1], in `modality`'s normalisation: for .ct the
    /// window map) back to a volume on the source grid of `prepared` (same header), values in modality units (HU).
    /// Pixels that cropping cut away get the modality's background (CT: the window minimum). For .mr the
    /// prepared volume's own map is inverted (if it was prepared as MR); otherwise values stay normalised.
    /// `slices` must hold `prepared.sliceCount` images of sliceSize² values (a programming error otherwise).
    public func reassemble(_ slices: [[Float]], like prepared: PreparedVolume, as modality: Modality) -> Volume {
        precondition(slices.count == prepared.sliceCount,
                     "reassemble: \(slices.count) slices for a volume of \(prepared.sliceCount)")
        let map: IntensityMap? = switch modality {
        case .ct: .ctWindow(prepared.configuration)
        case .mr: prepared.modality == .mr ? prepared.intensityMap : nil
        }
        let layout = prepared.layout, geometry = prepared.geometry
        let size = prepared.sliceSize
        let backgroundNormalised: Float = modality == .ct ? -1 : (prepared.modality == .mr ? prepared.background : -1)
        var voxels = [Float](repeating: 0, count: prepared.sourceGrid.count)
        var image = [Float](repeating: 0, count: layout.width * layout.height)
        voxels.withUnsafeMutableBufferPointer { out in
            image.withUnsafeMutableBufferPointer { img in
                for s in 0..<layout.sliceCount {
                    let slice = slices[s]
                    precondition(slice.count >= size * size, "reassemble: slice \(s) has \(slice.count) values, not \(size * size)")
                    slice.withUnsafeBufferPointer { geometry.inverse($0, into: img, background: backgroundNormalised) }
                    if let map { map.denormalize(img) }
                    for r in 0..<layout.height {
                        var dst = layout.sourceIndex(slice: s, row: r, column: 0)
                        let o = r * layout.width
                        for c in 0..<layout.width {
                            out[dst] = img[o + c]
                            dst += layout.columnStride
                        }
                    }
                }
            }
        }
        return Volume(grid: prepared.sourceGrid, voxels: voxels, affine: prepared.sourceAffine, header: prepared.sourceHeader)
    }
}

extension String {
    func replacingNewlines() -> String { split(separator: "\n").joined(separator: " ") }
}
