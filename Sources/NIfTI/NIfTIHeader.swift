/// NIfTI datatype codes (nifti1.h, `NIFTI_TYPE_*`).
public enum NIfTIDataType: Int, Sendable, CaseIterable {
    case uint8 = 2, int16 = 4, int32 = 8, float32 = 16, float64 = 64
    case int8 = 256, uint16 = 512, uint32 = 768, int64 = 1024, uint64 = 1280

    /// Bits per voxel (must equal the header's bitpix).
    public var bitsPerVoxel: Int {
        switch self {
        case .uint8, .int8: 8
        case .int16, .uint16: 16
        case .int32, .uint32, .float32: 32
        case .int64, .uint64, .float64: 64
        }
    }

    /// The lower-case name nibabel uses (e.g. "int16").
    public var name: String { "\(self)" }
}

/// The header fields MR2CT reads and writes (NIfTI-1 / NIfTI-2). Geometry fields are copied verbatim when a
/// volume is written "like" its source: dim, pixdim, qform/sform and their codes, xyzt_units.
public struct NIfTIHeader: Hashable, Sendable {
    /// 1 or 2 (NIfTI-1 / NIfTI-2); 0 for ANALYZE 7.5.
    public var version: Int = 1
    /// dim[0...7]: dim[0] is the number of dimensions.
    public var dim: [Int] = [3, 1, 1, 1, 1, 1, 1, 1]
    /// pixdim[0...7]: pixdim[0] is qfac (±1), pixdim[1...3] the voxel spacing.
    public var pixdim: [Double] = [1, 1, 1, 1, 1, 1, 1, 1]
    /// The stored datatype of the source file.
    public var datatype: NIfTIDataType = .float32
    /// scl_slope and scl_inter as stored (slope 0 or not finite means no scaling).
    public var sclSlope: Double = 1
    public var sclInter: Double = 0
    public var qformCode: Int = 0
    public var sformCode: Int = 0
    public var quaternB: Double = 0
    public var quaternC: Double = 0
    public var quaternD: Double = 0
    public var qoffset: SIMD3<Double> = .zero
    /// srow_x, srow_y, srow_z.
    public var srow: [SIMD4<Double>] = [SIMD4(1, 0, 0, 0), SIMD4(0, 1, 0, 0), SIMD4(0, 0, 1, 0)]
    public var xyztUnits: Int = 2  // NIFTI_UNITS_MM
    public var calMin: Double = 0
    public var calMax: Double = 0
    public var intentCode: Int = 0
    public var descrip: String = ""

    public init() {}
}
