import Foundation

/// The plane 2-D slices are taken in, in the canonical (RAS) frame: axial slices are stacked along S,
/// coronal along A, sagittal along R.
public enum SlicePlane: String, Codable, Sendable, CaseIterable {
    case axial, coronal, sagittal
}

/// The imaging modality of a volume: decides the intensity map and the background value.
public enum Modality: String, Codable, Sendable {
    case mr, ct
}

/// How MR intensities, which have no absolute scale, are normalised per volume.
public enum MRNormalization: Codable, Sendable, Hashable {
    /// The `lower` and `upper` percentiles (0…100) of the voxels inside the body mask map to -1 and 1;
    /// values beyond them are clipped (the nnU-Net / TorchIO robust scaling; default 0.5 / 99.5).
    case percentile(lower: Double, upper: Double)
    /// (v − mean) / standard deviation of the voxels inside the body mask; not clipped.
    case zScore
}

/// What training does with the voxels outside a volume's body mask (`BodyMask`).
public enum OutsideBody: String, Codable, Sendable, CaseIterable {
    /// Set to air: −1024 HU for CT (the couch, positioning aids, field-of-view padding; SynthRAD 2023's
    /// preprocessing), the normalised background for MR.
    case air
    /// Left as scanned (MR2CT before 2026-12; what a configuration without the key means).
    case keep
}

/// Everything that turns a volume into network slices and back. It travels with a trained model (as JSON in
/// the generator's metadata), so that conversion applies exactly the transformations training used.
public struct PreprocessingConfiguration: Codable, Sendable, Hashable {
    /// The slicing plane.
    public var plane: SlicePlane = .axial
    /// Adjacent slices given to the network as input channels (2.5-D context): 1, 3 or 5, edges replicated.
    public var contextSlices: Int = 1
    /// Slices are padded or cropped (centred) in-plane to sliceSize × sliceSize; a multiple of 4 for the
    /// ResNet generator's two stride-2 stages.
    public var sliceSize: Int = 256
    /// In-plane pixel spacing (mm) slices are resampled to (linear) before pad/crop; nil keeps the source spacing.
    public var targetSpacing: Double? = nil
    /// CT window in HU, [lower, upper], clipped and mapped linearly to [-1, 1] (SynthRAD 2023: [-1024, 3000]).
    public var ctWindow: [Float] = [-1024, 3000]
    /// How HU become network values: the linear `ctWindow` (default) or a piecewise-linear soft-tissue-aware map.
    public var ctMapping: CTIntensityMapping = .window
    /// MR intensity normalisation.
    public var mrNormalization: MRNormalization = .percentile(lower: 0.5, upper: 99.5)
    /// Training slices whose body-mask fraction (of the unpadded slice area) is below this are skipped.
    public var minimumBodyFraction: Double = 0.05
    /// CT voxels outside the CT's body mask: `.air` (new runs) sets the couch and everything else outside the
    /// body to −1024 HU before training, so that the CT domain holds no structure the MR domain lacks.
    /// A configuration saved without this key decodes to `.keep`, the behaviour it was trained with.
    public var ctOutsideBody: OutsideBody = .air
    /// MR voxels outside the MR's body mask: `.air` sets them to the MR's normalised background (its minimum),
    /// in training and conversion alike (both prepare through `SlicePipeline`). Missing key: `.keep`.
    public var mrOutsideBody: OutsideBody = .air

    public init() {}

    /// The lower and upper ends of the CT window.
    public var ctWindowLower: Float { ctWindow.first ?? -1024 }
    public var ctWindowUpper: Float { ctWindow.count > 1 ? ctWindow[1] : 3000 }

    /// Throws a one-line error if a value is out of range (context not 1/3/5, size not a positive multiple
    /// of 4, empty or inverted CT window, percentiles outside 0…100, …).
    public func validate() throws {
        func fail(_ reason: String) -> PreprocessingError { PreprocessingError(path: "preprocessing configuration", reason: reason) }
        guard [1, 3, 5].contains(contextSlices) else { throw fail("contextSlices must be 1, 3 or 5, not \(contextSlices)") }
        guard sliceSize >= 4, sliceSize % 4 == 0, sliceSize <= 4096 else {
            throw fail("sliceSize must be a multiple of 4 between 4 and 4096, not \(sliceSize)")
        }
        if let targetSpacing {
            guard targetSpacing.isFinite, Self.targetSpacingRange.contains(targetSpacing) else {
                throw fail(String(format: "targetSpacing must be between %g and %g mm, not %g", Self.targetSpacingRange.lowerBound,
                                  Self.targetSpacingRange.upperBound, targetSpacing))
            }
        }
        guard ctWindow.count == 2, ctWindow[0].isFinite, ctWindow[1].isFinite, ctWindow[0] < ctWindow[1] else {
            throw fail("ctWindow must be [lower, upper] with lower < upper, not \(ctWindow)")
        }
        try ctMapping.validate()
        if case let .percentile(lower, upper) = mrNormalization {
            guard lower >= 0, upper <= 100, lower < upper else {
                throw fail("MR percentiles must satisfy 0 <= lower < upper <= 100, not \(lower), \(upper)")
            }
        }
        guard minimumBodyFraction.isFinite, (0...1).contains(minimumBodyFraction) else {
            throw fail("minimumBodyFraction must be in [0, 1], not \(minimumBodyFraction)")
        }
    }

    /// The in-plane spacings (mm) slices may be resampled to: finer than 0.01 mm is no MR or CT, and would make
    /// slices of any real field of view too large to allocate.
    public static let targetSpacingRange: ClosedRange<Double> = 0.01...100

    /// The longest side (pixels) of a slice after in-plane resampling, checked before anything is allocated
    /// (8192² float pixels are 256 MB per slice).
    public static let maximumResampledSide = 8192

    /// The size of a `width` × `height` slice of pixel spacing (`columnSpacing`, `rowSpacing`) mm after resampling
    /// to `targetSpacing` (unchanged without one): each side n·spacing/target, rounded, at least 1. Throws a one-line
    /// error when a side would exceed `maximumResampledSide` (e.g. a header's pixdim of 10⁶ mm, or spacing in µm
    /// read as mm), before anything is allocated.
    public func resampledSliceSize(width: Int, height: Int, columnSpacing: Double, rowSpacing: Double) throws
        -> (width: Int, height: Int) {
        guard let targetSpacing else { return (width, height) }
        func side(_ n: Int, _ spacing: Double) throws -> Int {
            let value = (Double(n) * abs(spacing) / targetSpacing).rounded()
            guard value.isFinite, value <= Double(Self.maximumResampledSide) else {
                throw PreprocessingError(path: "volume", reason: String(
                    format: "resampling %d pixels of %g mm to %g mm gives %g pixels, above the limit of %d per side "
                        + "(check the voxel size and its units)", n, spacing, targetSpacing, value, Self.maximumResampledSide))
            }
            return max(1, Int(value))
        }
        return (try side(width, columnSpacing), try side(height, rowSpacing))
    }

    private enum CodingKeys: String, CodingKey {
        case plane, contextSlices, sliceSize, targetSpacing, ctWindow, ctMapping, mrNormalization, minimumBodyFraction
        case ctOutsideBody, mrOutsideBody
    }

    /// Decodes with the defaults for missing keys, so that a configuration saved by an older version still loads.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PreprocessingConfiguration()
        plane = try c.decodeIfPresent(SlicePlane.self, forKey: .plane) ?? d.plane
        contextSlices = try c.decodeIfPresent(Int.self, forKey: .contextSlices) ?? d.contextSlices
        sliceSize = try c.decodeIfPresent(Int.self, forKey: .sliceSize) ?? d.sliceSize
        targetSpacing = try c.decodeIfPresent(Double.self, forKey: .targetSpacing)
        ctWindow = try c.decodeIfPresent([Float].self, forKey: .ctWindow) ?? d.ctWindow
        ctMapping = try c.decodeIfPresent(CTIntensityMapping.self, forKey: .ctMapping) ?? d.ctMapping
        mrNormalization = try c.decodeIfPresent(MRNormalization.self, forKey: .mrNormalization) ?? d.mrNormalization
        minimumBodyFraction = try c.decodeIfPresent(Double.self, forKey: .minimumBodyFraction) ?? d.minimumBodyFraction
        // Older configurations (run folders, bundled models) kept everything outside the body.
        ctOutsideBody = try c.decodeIfPresent(OutsideBody.self, forKey: .ctOutsideBody) ?? .keep
        mrOutsideBody = try c.decodeIfPresent(OutsideBody.self, forKey: .mrOutsideBody) ?? .keep
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(plane, forKey: .plane)
        try c.encode(contextSlices, forKey: .contextSlices)
        try c.encode(sliceSize, forKey: .sliceSize)
        try c.encodeIfPresent(targetSpacing, forKey: .targetSpacing)
        try c.encode(ctWindow, forKey: .ctWindow)
        // Absent for the linear window, so configurations of earlier versions encode (and compare) unchanged.
        if ctMapping != .window { try c.encode(ctMapping, forKey: .ctMapping) }
        try c.encode(mrNormalization, forKey: .mrNormalization)
        try c.encode(minimumBodyFraction, forKey: .minimumBodyFraction)
        try c.encode(ctOutsideBody, forKey: .ctOutsideBody)
        try c.encode(mrOutsideBody, forKey: .mrOutsideBody)
    }
}

/// A preprocessing failure: `"<path>: <reason>"` on one line (the path is the file, or what was being prepared).
public struct PreprocessingError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}
