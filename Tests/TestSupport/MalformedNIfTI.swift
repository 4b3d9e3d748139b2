import Foundation

/// One malformed or hostile NIfTI input: the files to create, the path to hand to the tool, and a substring the
/// error reason must contain. Every case must be refused with a one-line error (exit 1), never a crash or hang.
public struct MalformedNIfTICase: Sendable {
    /// A short identifier, also the stem of the file.
    public var name: String
    /// The path to pass to the tool, relative to the case folder.
    public var fileName: String
    /// Files to create (relative name → bytes).
    public var files: [String: [UInt8]]
    /// Folders to create (relative names).
    public var folders: [String] = []
    /// A substring of the reason MR2CT gives.
    public var expectedReason: String
    /// True for NaN/Inf voxel cases, which `.replaceWithZero` accepts.
    public var nonFiniteOnly = false
    /// True for the valid 4-D file read without a volume index (`mr2ct info` describes its volume 0).
    public var fourDimensionalOnly = false
    /// A special file system object created at `fileName` instead of a file (issue 16: refused by type before
    /// anything opens it; opening a FIFO would block forever).
    public var special: SpecialFile? = nil
}

/// File system objects that are not regular files but may carry a volume's name.
public enum SpecialFile: Sendable {
    /// A named pipe (mkfifo): open(2) blocks until a writer comes.
    case fifo
    /// A symbolic link to /dev/zero, a character device that never ends.
    case characterDevice
    /// Two symbolic links pointing at each other.
    case symlinkLoop
    /// A symbolic link to a file that does not exist.
    case danglingSymlink
    /// A Unix-domain socket (bound, nobody listening): open(2) fails with ENXIO, so only a check by type names it.
    case socket

    /// Every kind.
    public static let all: [SpecialFile] = [.fifo, .characterDevice, .symlinkLoop, .danglingSymlink, .socket]

    /// The words MR2CT's refusal of it contains.
    public var expectedReason: String {
        switch self {
        case .fifo: "is a FIFO"
        case .characterDevice: "is a character device"
        case .symlinkLoop: "symlink loop"
        case .danglingSymlink: "dangling symbolic link"
        case .socket: "is a socket"
        }
    }
}

/// Generates at least 30 malformed/hostile NIfTI inputs (issue 9) from a hand-built valid NIfTI-1 file, so that
/// `mr2ct info`, `convert` and `train` can all be run over the same set. Build with `MalformedNIfTI.cases`, put
/// them on disk with `materializeAll(in:)` (one folder, distinct names, good for batch runs) or `materialize`.
public enum MalformedNIfTI {
    // MARK: A valid little-endian NIfTI-1 file built byte by byte (nifti1.h offsets)

    /// Header fields of the hand-built file.
    public struct Spec: Sendable {
        public var sizeofHdr: Int32 = 348
        public var dim: [Int16] = [3, 4, 3, 2, 1, 1, 1, 1]
        public var datatype: Int16 = 16
        public var bitpix: Int16 = 32
        public var pixdim: [Float] = [1, 1, 1, 1, 1, 1, 1, 1]
        public var voxOffset: Float = 352
        public var sclSlope: Float = 1
        public var sclInter: Float = 0
        public var qformCode: Int16 = 0
        public var sformCode: Int16 = 1
        public var srow: [[Float]] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
        public var magic = "n+1"
        /// xyzt_units (byte 123): spatial units in bits 0–2 (1 m, 2 mm, 3 µm), time units in bits 3–5.
        public var xyztUnits: UInt8 = 0
        public init() {}
    }

    static func put<T: FixedWidthInteger>(_ v: T, _ bytes: inout [UInt8], _ offset: Int) {
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }
    static func putFloat(_ v: Float, _ bytes: inout [UInt8], _ offset: Int) { put(v.bitPattern, &bytes, offset) }

    /// The 348-byte NIfTI-1 header of `spec`.
    public static func header(_ spec: Spec) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 348)
        put(spec.sizeofHdr, &b, 0)
        for i in 0..<8 { put(spec.dim[i], &b, 40 + 2 * i) }
        put(spec.datatype, &b, 70)
        put(spec.bitpix, &b, 72)
        b[123] = spec.xyztUnits
        for i in 0..<8 { putFloat(spec.pixdim[i], &b, 76 + 4 * i) }
        putFloat(spec.voxOffset, &b, 108)
        putFloat(spec.sclSlope, &b, 112)
        putFloat(spec.sclInter, &b, 116)
        put(spec.qformCode, &b, 252)
        put(spec.sformCode, &b, 254)
        for r in 0..<3 { for c in 0..<4 { putFloat(spec.srow[r][c], &b, 280 + 16 * r + 4 * c) } }
        for (i, ch) in spec.magic.utf8.prefix(4).enumerated() { b[344 + i] = ch }
        return b
    }

    /// A whole single-file .nii: header, 4-byte extender, then `data` (or a float32 ramp sized by dim).
    public static func nii(_ spec: Spec = Spec(), data: [UInt8]? = nil) -> [UInt8] {
        let count = (1...Int(max(1, min(7, spec.dim[0])))).reduce(1) { min(1 << 20, $0 * max(1, Int(spec.dim[$1]))) }
        let payload = data ?? floatBytes((0..<min(count, 1 << 16)).map { Float($0) })
        return header(spec) + [0, 0, 0, 0] + payload
    }

    public static func floatBytes(_ values: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * 4)
        for (i, v) in values.enumerated() { put(v.bitPattern, &out, 4 * i) }
        return out
    }

    /// A gzip member holding `data` in stored (uncompressed) DEFLATE blocks (RFC 1951 §3.2.4, RFC 1952).
    public static func gzipStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]
        var offset = 0
        repeat {
            let n = min(65535, data.count - offset)
            let final: UInt8 = offset + n == data.count ? 1 : 0
            out.append(final)
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[offset..<(offset + n)]
            offset += n
        } while offset < data.count
        var crc = crc32(data)
        for _ in 0..<4 { out.append(UInt8(crc & 0xFF)); crc >>= 8 }
        var size = UInt32(truncatingIfNeeded: data.count)
        for _ in 0..<4 { out.append(UInt8(size & 0xFF)); size >>= 8 }
        return out
    }

    static func crc32(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
        }
        return ~crc
    }

    // MARK: The cases

    /// The malformed inputs. `realGzip` (a real DEFLATE-compressed .nii.gz, e.g. a fixture) adds corrupt-stream
    /// cases made from it.
    public static func cases(realGzip: [UInt8]? = nil) -> [MalformedNIfTICase] {
        var list: [MalformedNIfTICase] = []
        func addAs(_ name: String, _ ext: String, _ bytes: [UInt8], _ reason: String) {
            list.append(MalformedNIfTICase(name: name, fileName: name + ext, files: [name + ext: bytes], expectedReason: reason))
        }
        func add(_ name: String, _ bytes: [UInt8], _ reason: String) { addAs(name, ".nii", bytes, reason) }
        func spec(_ change: (inout Spec) -> Void) -> Spec { var s = Spec(); change(&s); return s }
        let valid = nii()

        add("empty", [], "empty file")
        for cut in [1, 100, 200, 347] { add("truncated_header_\(cut)", Array(valid.prefix(cut)), "truncated header") }
        add("truncated_data", Array(valid.prefix(352 + 10)), "data truncated")
        add("truncated_extender", Array(valid.prefix(350)), "beyond the end")
        add("text_file", Array(String(repeating: "not an image\n", count: 40).utf8), "bad sizeof_hdr")
        add("ascii_nifti", Array(("<nifti_image\n  ndim = '3'\n" + String(repeating: " ", count: 400) + "/>\n").utf8), "bad sizeof_hdr")
        add("sizeof_hdr_zero", nii(spec { $0.sizeofHdr = 0 }), "bad sizeof_hdr")
        add("sizeof_hdr_1234", nii(spec { $0.sizeofHdr = 1234 }), "bad sizeof_hdr")
        // sizeof_hdr byte-swapped but the rest little-endian: read big-endian, dim[0] becomes 768.
        add("sizeof_hdr_byteswapped", nii(spec { $0.sizeofHdr = Int32(348).byteSwapped }), "dim[0]")
        add("magic_wrong", nii(spec { $0.magic = "abc" }), "no NIfTI magic")
        add("magic_pair_in_nii", nii(spec { $0.magic = "ni1" }), "marks an .hdr/.img pair")
        add("magic_nifti2_in_348", nii(spec { $0.magic = "n+2" }), "NIfTI-2 headers are 540 bytes")
        addAs("magic_single_in_hdr", ".hdr", header(spec { $0.magic = "n+1" }), "marks a single .nii file")
        add("dim0_zero", nii(spec { $0.dim[0] = 0 }), "dim[0] = 0")
        add("dim0_eight", nii(spec { $0.dim[0] = 8 }), "dim[0] = 8")
        add("dim0_negative", nii(spec { $0.dim[0] = -1 }), "dim[0] = -1")
        add("dim_zero", nii(spec { $0.dim[2] = 0 }), "dim[2] = 0")
        add("dim_negative", nii(spec { $0.dim[3] = -5 }), "dim[3] = -5")
        add("claims_gigavoxels", nii(spec { $0.dim = [3, 32767, 32767, 32767, 1, 1, 1, 1] }), "exceeds the limit")
        add("claims_gigabytes_4d", nii(spec { $0.dim = [4, 64, 64, 64, 30000, 1, 1, 1] }), "data truncated")
        addAs("claims_gigabytes_gz", ".nii.gz", gzipStored(nii(spec { $0.dim = [3, 1000, 1000, 200, 1, 1, 1, 1] }, data: [])),
            "more than a")
        add("dims_overflow_7d", nii(spec { $0.dim = [7, 32767, 32767, 32767, 32767, 32767, 32767, 32767] }), "overflow")
        add("bitpix_mismatch", nii(spec { $0.bitpix = 16 }), "bitpix 16 does not match")
        add("datatype_unknown", nii(spec { $0.datatype = 999 }), "unknown datatype 999")
        add("datatype_zero", nii(spec { $0.datatype = 0 }), "datatype 0")
        add("datatype_rgb", nii(spec { $0.datatype = 128; $0.bitpix = 24 }), "RGB")
        add("datatype_complex", nii(spec { $0.datatype = 32; $0.bitpix = 64 }), "complex")
        add("vox_offset_beyond_file", nii(spec { $0.voxOffset = 1_000_000 }), "beyond the end")
        add("vox_offset_inside_header", nii(spec { $0.voxOffset = 100 }), "inside the 348-byte header")
        add("vox_offset_nan", nii(spec { $0.voxOffset = .nan }), "bad vox_offset")
        add("vox_offset_negative", nii(spec { $0.voxOffset = -352 }), "bad vox_offset")
        add("vox_offset_huge", nii(spec { $0.voxOffset = 1e30 }), "bad vox_offset")
        add("scl_inter_nan", nii(spec { $0.sclSlope = 2; $0.sclInter = .nan }), "non-finite scl_inter")
        add("sform_nan", nii(spec { $0.srow[1][1] = .nan }), "non-finite")
        add("pixdim_zero", nii(spec { $0.sformCode = 0; $0.pixdim[2] = 0 }), "pixdim[2] = 0")
        add("pixdim_nan", nii(spec { $0.pixdim[1] = .nan }), "pixdim[1]")
        add("affine_singular", nii(spec { $0.srow[2] = [0, 0, 0, 5] }), "singular")
        var nanData = floatBytes((0..<24).map { Float($0) })
        put(Float.nan.bitPattern, &nanData, 4 * 5)
        add("nan_voxel", nii(data: nanData), "NaN or infinite")
        var infData = floatBytes((0..<24).map { Float($0) })
        put(Float.infinity.bitPattern, &infData, 0)
        put((-Float.infinity).bitPattern, &infData, 4 * 23)
        add("inf_voxels", nii(data: infData), "2 of 24 voxels")
        list[list.count - 2].nonFiniteOnly = true
        list[list.count - 1].nonFiniteOnly = true
        addAs("pair_without_img", ".hdr", header(spec { $0.magic = "ni1"; $0.voxOffset = 0 }), "is missing")
        addAs("pair_short_img", ".hdr", header(spec { $0.magic = "ni1"; $0.voxOffset = 0 }), "data truncated")
        list[list.count - 1].files["pair_short_img.img"] = Array(repeating: 0, count: 50)
        addAs("gzip_garbage", ".nii.gz", [0x1F, 0x8B, 8, 0] + Array(repeating: 0xAB, count: 600), "sizeof_hdr")
        var badCRC = gzipStored(valid)
        badCRC[badCRC.count - 6] ^= 0xFF
        addAs("gzip_bad_crc", ".nii.gz", badCRC, "corrupt gzip")
        addAs("gzip_truncated_trailer", ".nii.gz", Array(gzipStored(valid).dropLast(8)), "gzip")
        addAs("gzip_truncated_header", ".nii.gz", Array(gzipStored(valid).prefix(200)), "truncated header")
        if let realGzip, realGzip.count > 100 {
            var flipped = realGzip
            for i in stride(from: 40, to: flipped.count - 20, by: 7) { flipped[i] ^= 0x5A }
            addAs("gzip_corrupt_deflate", ".nii.gz", flipped, "gzip")
            addAs("gzip_cut_in_half", ".nii.gz", Array(realGzip.prefix(realGzip.count / 2)), "gzip")
        }
        add("four_d_without_index", nii(spec { $0.dim = [4, 2, 2, 2, 3, 1, 1, 1] }), "4-D file with 3 volumes")
        list[list.count - 1].fourDimensionalOnly = true
        list.append(MalformedNIfTICase(name: "img_given", fileName: "img_given.img",
                                       files: ["img_given.img": Array(repeating: 0, count: 96)], expectedReason: "without its header"))
        addAs("wrong_name", ".txt", valid, "not a NIfTI file name")
        list.append(MalformedNIfTICase(name: "folder", fileName: "folder.nii", files: [:], folders: ["folder.nii"],
                                       expectedReason: "is a folder"))
        list.append(MalformedNIfTICase(name: "missing", fileName: "missing.nii", files: [:], expectedReason: "no such file"))
        // Issue 16: special files, refused by type before anything opens them.
        for (name, special) in zip(["fifo", "device", "symlink_loop", "dangling_link", "socket"], SpecialFile.all) {
            list.append(MalformedNIfTICase(name: name, fileName: name + ".nii", files: [:],
                                           expectedReason: special.expectedReason, special: special))
        }
        return list
    }

    /// Cases including the corrupt-DEFLATE ones made from the committed fixture orient_ras.nii.gz.
    public static let allCases: [MalformedNIfTICase] = {
        let fixture = TestSupport.fixturesDirectory.appendingPathComponent("nifti/orient_ras.nii.gz")
        return cases(realGzip: (try? Data(contentsOf: fixture)).map { [UInt8]($0) })
    }()

    /// Creates `c`'s files in `directory`; returns the path to pass to the tool.
    @discardableResult
    public static func materialize(_ c: MalformedNIfTICase, in directory: URL) throws -> URL {
        for folder in c.folders {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        for (name, bytes) in c.files { try Data(bytes).write(to: directory.appendingPathComponent(name)) }
        let target = directory.appendingPathComponent(c.fileName)
        if let special = c.special { try makeSpecial(special, at: target) }
        return target
    }

    /// Creates a special file system object at `url`.
    public static func makeSpecial(_ special: SpecialFile, at url: URL) throws {
        let path = url.path
        let status: Int32
        switch special {
        case .fifo: status = mkfifo(path, 0o644)
        case .characterDevice: status = symlink("/dev/zero", path)
        case .symlinkLoop:
            let other = path + ".loop"
            status = symlink(other, path) == 0 ? symlink(path, other) : -1
        case .danglingSymlink: status = symlink(path + ".absent-target", path)
        case .socket: status = bindSocket(at: path)
        }
        guard status == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }

    /// Binds a Unix-domain socket at a short path in /tmp (sun_path holds at most 107 bytes) and renames it to
    /// `path` (same file system); the descriptor is closed, the socket file stays. 0 on success.
    static func bindSocket(at path: String) -> Int32 {
        let short = "/tmp/mr2ct-sock-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(short.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return -1 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { return -1 }
        guard rename(short, path) == 0 else { unlink(short); return -1 }
        return 0
    }

    /// Every case in one folder (names are distinct), e.g. for a batch run over a folder of bad files.
    public static func materializeAll(in directory: URL) throws -> [(case: MalformedNIfTICase, url: URL)] {
        try allCases.map { ($0, try materialize($0, in: directory)) }
    }
}
