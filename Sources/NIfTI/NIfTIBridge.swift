import CNIfTI
import Foundation

/// The only place that touches CNIfTI: converts between its C structs and MR2CT's Swift types.
enum NIfTIBridge {
    static let libraryVersion: String = String(cString: cnifti_library_version())

    /// Up to `count` bytes from the start of `path`, gunzipped when it is gzip; nil on a corrupt gzip stream.
    static func prefix(_ path: String, count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { cnifti_read_prefix(path, $0.baseAddress, Int64(count)) }
        guard n >= 0 else { return nil }
        buffer.removeLast(count - Int(n))
        return buffer
    }

    /// The decompressed length of `path` (read to the end, at most `limit` bytes); nil on a corrupt gzip stream.
    static func streamLength(_ path: String, limit: Int64 = .max) -> Int64? {
        let n = cnifti_stream_length(path, limit)
        return n >= 0 ? n : nil
    }

    /// An open dataset: nifti_clib's parse of the header.
    final class Image {
        let handle: OpaquePointer
        let header: cnifti_header
        init?(path: String) {
            var h = cnifti_header()
            guard let p = cnifti_open(path, &h) else { return nil }
            handle = p
            header = h
        }
        deinit { cnifti_close(handle) }

        /// Reads volume `index` of `dataPath` into `buffer` (nx·ny·nz·nbyper bytes); false on failure.
        func readVolume(_ index: Int, from dataPath: String, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
            let n = cnifti_read_volume(handle, dataPath, Int64(index), buffer.baseAddress, Int64(buffer.count))
            return n == Int64(buffer.count)
        }
    }

    static func matrix(_ t: (Double, Double, Double, Double, Double, Double, Double, Double,
                             Double, Double, Double, Double, Double, Double, Double, Double)) -> Affine {
        Affine(rows: [SIMD4(t.0, t.1, t.2, t.3), SIMD4(t.4, t.5, t.6, t.7),
                      SIMD4(t.8, t.9, t.10, t.11), SIMD4(t.12, t.13, t.14, t.15)])
    }

    /// The MR2CT header of an opened dataset.
    static func header(_ h: cnifti_header, datatype: NIfTIDataType) -> NIfTIHeader {
        var out = NIfTIHeader()
        out.version = Int(h.version)
        out.dim = withUnsafeBytes(of: h.dim) { Array($0.bindMemory(to: Int64.self)).map { Int($0) } }
        out.pixdim = withUnsafeBytes(of: h.pixdim) { Array($0.bindMemory(to: Double.self)) }
        out.pixdim[0] = h.qfac < 0 ? -1 : 1
        out.datatype = datatype
        out.sclSlope = h.scl_slope
        out.sclInter = h.scl_inter
        out.qformCode = Int(h.qform_code)
        out.sformCode = Int(h.sform_code)
        out.quaternB = h.quatern_b
        out.quaternC = h.quatern_c
        out.quaternD = h.quatern_d
        out.qoffset = SIMD3(h.qoffset_x, h.qoffset_y, h.qoffset_z)
        let s = matrix(h.sto_xyz)
        out.srow = [s.rows[0], s.rows[1], s.rows[2]]
        out.xyztUnits = Int(h.xyz_units) | Int(h.time_units)
        out.calMin = h.cal_min
        out.calMax = h.cal_max
        out.intentCode = Int(h.intent_code)
        out.descrip = withUnsafeBytes(of: h.descrip) { raw in
            let bytes = raw.prefix(80)
            let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
        return out
    }

    /// The C header for writing `header` with `datatype` and scaling (slope, inter).
    static func cHeader(_ header: NIfTIHeader, grid: GridSize, datatype: NIfTIDataType,
                        slope: Double, inter: Double) -> cnifti_header {
        var h = cnifti_header()
        h.version = header.version == 2 ? 2 : 1
        h.datatype = Int32(datatype.rawValue)
        h.nbyper = Int32(datatype.bitsPerVoxel / 8)
        var dim = [Int64](repeating: 1, count: 8)
        dim[0] = 3; dim[1] = Int64(grid.nx); dim[2] = Int64(grid.ny); dim[3] = Int64(grid.nz)
        withUnsafeMutableBytes(of: &h.dim) { raw in
            for i in 0..<8 { raw.storeBytes(of: dim[i], toByteOffset: 8 * i, as: Int64.self) }
        }
        var pixdim = header.pixdim.count == 8 ? header.pixdim : [1, 1, 1, 1, 1, 1, 1, 1]
        pixdim[0] = header.pixdim.first.map { $0 < 0 ? -1 : 1 } ?? 1
        withUnsafeMutableBytes(of: &h.pixdim) { raw in
            for i in 0..<8 { raw.storeBytes(of: pixdim[i], toByteOffset: 8 * i, as: Double.self) }
        }
        h.qfac = pixdim[0]
        h.scl_slope = slope
        h.scl_inter = inter
        h.cal_min = 0
        h.cal_max = 0
        h.qform_code = Int32(header.qformCode)
        h.sform_code = Int32(header.sformCode)
        h.quatern_b = header.quaternB
        h.quatern_c = header.quaternC
        h.quatern_d = header.quaternD
        h.qoffset_x = header.qoffset.x
        h.qoffset_y = header.qoffset.y
        h.qoffset_z = header.qoffset.z
        let rows = header.srow.count == 3 ? header.srow : [SIMD4(1, 0, 0, 0), SIMD4(0, 1, 0, 0), SIMD4(0, 0, 1, 0)]
        withUnsafeMutableBytes(of: &h.sto_xyz) { raw in
            for r in 0..<4 {
                for c in 0..<4 {
                    let v = r < 3 ? rows[r][c] : (c == 3 ? 1 : 0)
                    raw.storeBytes(of: v, toByteOffset: 8 * (4 * r + c), as: Double.self)
                }
            }
        }
        h.xyz_units = Int32(header.xyztUnits & 0x07)
        h.time_units = Int32(header.xyztUnits & 0x38)
        h.intent_code = Int32(header.intentCode)
        let descrip = Array(header.descrip.utf8.prefix(79))
        withUnsafeMutableBytes(of: &h.descrip) { raw in
            for (i, b) in descrip.enumerated() { raw[i] = b }
        }
        return h
    }

    /// Writes one NIfTI file with nifti_clib; returns 0 or an errno value.
    static func write(path: String, header: cnifti_header, bytes: UnsafeRawBufferPointer) -> Int32 {
        var h = header
        return cnifti_write(path, &h, bytes.baseAddress, Int64(bytes.count))
    }

    /// nifti_dmat44_to_quatern: (b, c, d, qx, qy, qz, dx, dy, dz, qfac) of `affine`.
    static func quaternion(of affine: Affine) -> [Double] {
        var m = [Double](repeating: 0, count: 16)
        for r in 0..<4 { for c in 0..<4 { m[4 * r + c] = affine[r, c] } }
        var out = [Double](repeating: 0, count: 10)
        cnifti_matrix_to_quatern(m, &out)
        return out
    }

    /// nifti_quatern_to_dmat44 of (b, c, d, qx, qy, qz, dx, dy, dz, qfac).
    static func affine(quaternion q: [Double]) -> Affine {
        var m = [Double](repeating: 0, count: 16)
        cnifti_quatern_to_matrix(q, &m)
        return Affine(rows: (0..<4).map { r in SIMD4(m[4 * r], m[4 * r + 1], m[4 * r + 2], m[4 * r + 3]) })
    }
}
