import Foundation

/// The fields of a NIfTI-1 / NIfTI-2 / ANALYZE 7.5 header that decide whether it is safe to hand to nifti_clib,
/// decoded straight from the first bytes of the file (NIfTI-1: nifti1.h; NIfTI-2: nifti2.h, 540-byte layout).
struct RawHeader {
    enum Kind { case analyze, nifti1, nifti2 }
    var kind: Kind
    var swapped: Bool
    var headerSize: Int
    /// Magic says single file (n+1, n+2) or pair (ni1, ni2); ANALYZE is always a pair.
    var singleFile: Bool
    var magic: String
    var dim: [Int64]
    var datatype: Int
    var bitpix: Int
    var voxOffset: Double
    var pixdim: [Double]
    var sclSlope: Double
    var sclInter: Double

    /// Parses and checks the header prefix `bytes` (at least 348 bytes, 540 for NIfTI-2).
    static func parse(_ bytes: [UInt8]) throws(ReasonError) -> RawHeader {
        guard bytes.count >= 348 else {
            throw ReasonError("truncated header (\(bytes.count) of 348 bytes)")
        }
        let reader = ByteReader(bytes: bytes, swapped: false)
        let size = reader.int32(0)
        let swappedSize = size.byteSwapped
        let swapped: Bool
        let headerSize: Int
        if size == 348 || size == 540 {
            swapped = false
            headerSize = Int(size)
        } else if swappedSize == 348 || swappedSize == 540 {
            swapped = true
            headerSize = Int(swappedSize)
        } else {
            throw ReasonError("bad sizeof_hdr \(size) (expected 348 or 540): not a NIfTI or ANALYZE header")
        }
        let r = ByteReader(bytes: bytes, swapped: swapped)
        if headerSize == 540 {
            guard bytes.count >= 540 else {
                throw ReasonError("truncated NIfTI-2 header (\(bytes.count) of 540 bytes)")
            }
            let magic = r.string(4, 4)
            guard magic == "n+2" || magic == "ni2" else {
                throw ReasonError("bad magic \(quoted(r.string(4, 8))) for a 540-byte header (expected n+2 or ni2)")
            }
            let dim = (0..<8).map { r.int64(16 + 8 * $0) }
            return RawHeader(kind: .nifti2, swapped: swapped, headerSize: 540, singleFile: magic == "n+2",
                             magic: magic, dim: dim, datatype: Int(r.int16(12)), bitpix: Int(r.int16(14)),
                             voxOffset: Double(r.int64(168)), pixdim: (0..<8).map { r.float64(104 + 8 * $0) },
                             sclSlope: r.float64(176), sclInter: r.float64(184))
        }
        let magic = r.string(344, 4)
        let kind: Kind
        switch magic {
        case "n+1", "ni1": kind = .nifti1
        case "n+2", "ni2": throw ReasonError("magic \(magic) in a 348-byte header (NIfTI-2 headers are 540 bytes)")
        default: kind = .analyze
        }
        let dim = (0..<8).map { Int64(r.int16(40 + 2 * $0)) }
        return RawHeader(kind: kind, swapped: swapped, headerSize: 348, singleFile: magic == "n+1",
                         magic: kind == .analyze ? "" : magic, dim: dim, datatype: Int(r.int16(70)),
                         bitpix: Int(r.int16(72)), voxOffset: Double(r.float32(108)),
                         pixdim: (0..<8).map { Double(r.float32(76 + 4 * $0)) },
                         sclSlope: Double(r.float32(112)), sclInter: Double(r.float32(116)))
    }

    /// Dimensions, datatype and bitpix: everything that sizes an allocation.
    func validateLayout(maxVoxels: Int) throws(ReasonError) -> (grid: GridSize, volumes: Int, datatype: NIfTIDataType) {
        let rank = dim[0]
        guard (1...7).contains(rank) else {
            throw ReasonError("dim[0] = \(rank) (expected 1…7)")
        }
        for d in 1...Int(rank) where dim[d] < 1 {
            throw ReasonError("dim[\(d)] = \(dim[d]) (dimensions must be at least 1)")
        }
        let sizes = (1...7).map { $0 <= rank ? dim[$0] : 1 }
        var total: Int64 = 1
        for s in sizes {
            let (p, overflow) = total.multipliedReportingOverflow(by: s)
            guard !overflow else {
                throw ReasonError("dimensions \(sizes.prefix(Int(rank)).map(String.init).joined(separator: "×")) overflow a 64-bit voxel count")
            }
            total = p
        }
        let spatial = sizes[0] * sizes[1] * sizes[2]   // ≤ total, no overflow
        guard spatial <= Int64(maxVoxels) else {
            throw ReasonError("\(sizes[0])×\(sizes[1])×\(sizes[2]) = \(spatial) voxels exceeds the limit of \(maxVoxels)")
        }
        guard let type = NIfTIDataType(rawValue: datatype) else {
            switch datatype {
            case 128, 2304: throw ReasonError("RGB datatype \(datatype) is not supported (scalar images only)")
            case 32, 1792, 2048: throw ReasonError("complex datatype \(datatype) is not supported (scalar images only)")
            case 0: throw ReasonError("datatype 0 (unknown)")
            default: throw ReasonError("unknown datatype \(datatype)")
            }
        }
        guard bitpix == type.bitsPerVoxel else {
            throw ReasonError("bitpix \(bitpix) does not match datatype \(type.name) (\(type.bitsPerVoxel) bits)")
        }
        // Voxel sizes of the spatial axes: used for spacing (and the affine without codes); nifti_clib would
        // quietly turn a bad one into 1.
        for d in 1...min(3, Int(rank)) where !(pixdim[d].isFinite && pixdim[d] != 0) {
            throw ReasonError("pixdim[\(d)] = \(pixdim[d]) (voxel sizes must be finite and non-zero)")
        }
        let (bytes, overflow) = total.multipliedReportingOverflow(by: Int64(type.bitsPerVoxel / 8))
        guard !overflow, bytes < Int64.max / 2 else {
            throw ReasonError("data size overflows 64 bits")
        }
        return (GridSize(Int(sizes[0]), Int(sizes[1]), Int(sizes[2])), Int(total / spatial), type)
    }

    /// The data bytes the header promises (all volumes).
    func dataBytes(_ grid: GridSize, volumes: Int, _ type: NIfTIDataType) -> Int64 {
        Int64(grid.count) * Int64(volumes) * Int64(type.bitsPerVoxel / 8)
    }
}

/// A reason without a path, attached to one by the caller.
struct ReasonError: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

func quoted(_ s: String) -> String {
    "\"" + s.unicodeScalars.map { $0.value >= 32 && $0.value < 127 ? String($0) : "\\x" + String($0.value, radix: 16) }
        .joined() + "\""
}

/// Little- or big-endian field access into a byte array (bounds already checked by the caller).
struct ByteReader {
    var bytes: [UInt8]
    var swapped: Bool

    private func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: bytes[offset + i]) << (8 * i) }
        return swapped ? v.byteSwapped : v
    }
    func int16(_ o: Int) -> Int16 { load(o, as: Int16.self) }
    func int32(_ o: Int) -> Int32 { load(o, as: Int32.self) }
    func int64(_ o: Int) -> Int64 { load(o, as: Int64.self) }
    func float32(_ o: Int) -> Float { Float(bitPattern: load(o, as: UInt32.self)) }
    func float64(_ o: Int) -> Double { Double(bitPattern: load(o, as: UInt64.self)) }
    /// A NUL-terminated string of at most `count` bytes.
    func string(_ o: Int, _ count: Int) -> String {
        let slice = bytes[o..<(o + count)]
        let end = slice.firstIndex(of: 0) ?? slice.endIndex
        return String(decoding: bytes[o..<end], as: UTF8.self)
    }
}
