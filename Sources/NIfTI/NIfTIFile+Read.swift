import Foundation
import MR2CTSupport

extension NIfTIFile {
    /// Reads a 3-D volume (or volume `options.volumeIndex` of a 4-D file), scaled by scl_slope/scl_inter, with the
    /// affine NIfTI prescribes. The header is validated before nifti_clib sees it and before any allocation.
    public static func read(_ url: URL, options: NIfTIReadOptions = .init()) throws -> Volume {
        try readReporting(url, options: options).volume
    }

    /// `read`, also reporting how many non-finite voxels were replaced (policy `.replaceWithZero`).
    public static func readReporting(_ url: URL, options: NIfTIReadOptions = .init()) throws -> NIfTIReadResult {
        let path = url.path
        do {
            return try readChecked(path, options: options)
        } catch {
            throw NIfTIError(path: path, reason: error.reason)
        }
    }

    /// The header only (no voxel data read), validated as `read` does; 4-D files are accepted.
    public static func readHeader(_ url: URL) throws -> NIfTIHeader {
        let path = url.path
        do {
            let opened = try open(path, options: NIfTIReadOptions(volumeIndex: 0, maxVoxels: .max))
            return opened.header
        } catch {
            throw NIfTIError(path: path, reason: error.reason)
        }
    }

    /// A dataset whose header passed every check, opened by nifti_clib.
    struct Opened {
        var image: NIfTIBridge.Image
        var header: NIfTIHeader
        var grid: GridSize
        var volumes: Int
        var datatype: NIfTIDataType
        var raw: RawHeader
        var dataPath: String
        var dataBytes: Int64
    }

    static func open(_ givenPath: String, options: NIfTIReadOptions) throws(ReasonError) -> Opened {
        let fm = FileManager.default
        // By type before anything opens it: a FIFO would block, a device never end.
        if let problem = FileKind.of(givenPath).problemAsFile(folder: "is a folder, not a volume file") {
            throw ReasonError(problem)
        }
        var path = givenPath
        var lower = (path as NSString).lastPathComponent.lowercased()
        if lower.hasSuffix(".img") || lower.hasSuffix(".img.gz") {
            // An image file is read through its header, as nibabel and nifti_clib do (x.img → x.hdr).
            let stem = String(path.dropLast(lower.hasSuffix(".gz") ? 7 : 4))
            let headers = lower.hasSuffix(".gz") ? [".hdr.gz", ".hdr", ".HDR.GZ", ".HDR"] : [".hdr", ".hdr.gz", ".HDR", ".HDR.GZ"]
            guard let header = headers.map({ stem + $0 }).first(where: { fm.fileExists(atPath: $0) }) else {
                throw ReasonError("an .img file without its header \((stem as NSString).lastPathComponent).hdr")
            }
            if let problem = FileKind.of(header).problemAsFile(folder: "its header \(header) is a folder") {
                throw ReasonError("its header \(header): \(problem)")
            }
            path = header
            lower = (path as NSString).lastPathComponent.lowercased()
        }
        guard let suffix = volumeSuffixes.first(where: { lower.hasSuffix($0) && lower.count > $0.count }) else {
            throw ReasonError("not a NIfTI file name (expected .nii, .nii.gz, .hdr, .hdr.gz or .img)")
        }
        let compressed = suffix.hasSuffix(".gz")
        let pair = suffix.hasPrefix(".hdr")
        guard access(path, R_OK) == 0 else { throw ReasonError("cannot read: \(String(cString: strerror(errno)))") }
        let fileSize = fileLength(path)
        guard fileSize > 0 else { throw ReasonError("empty file") }

        if !compressed, let handle = FileHandle(forReadingAtPath: path) {
            let magic = (try? handle.read(upToCount: 2)) ?? nil
            try? handle.close()
            if magic == Data([0x1F, 0x8B]) {
                throw ReasonError("gzip-compressed data in a file not named .gz (rename it \((path as NSString).lastPathComponent).gz)")
            }
        }
        guard let prefix = NIfTIBridge.prefix(path, count: 540) else {
            throw ReasonError(compressed ? "corrupt gzip stream" : "cannot read the header")
        }
        guard !prefix.isEmpty else { throw ReasonError("corrupt gzip stream (no data)") }
        let raw = try RawHeader.parse(prefix)
        if pair && raw.singleFile {
            throw ReasonError("magic \(raw.magic) marks a single .nii file, but the name is \(suffix)")
        }
        if !pair && !raw.singleFile {
            throw ReasonError(raw.kind == .analyze
                ? "no NIfTI magic (n+1/n+2) in a \(suffix) file"
                : "magic \(raw.magic) marks an .hdr/.img pair, but the name is \(suffix)")
        }
        let layout = try raw.validateLayout(maxVoxels: options.maxVoxels)
        // vox_offset and the data it promises.
        let voxOffset = raw.voxOffset
        guard voxOffset.isFinite, voxOffset >= 0, voxOffset < 0x1p62 else {
            throw ReasonError("bad vox_offset \(voxOffset)")
        }
        let offset = Int64(voxOffset)
        if !pair && offset < Int64(raw.headerSize) {
            throw ReasonError("vox_offset \(offset) lies inside the \(raw.headerSize)-byte header")
        }
        var dataPath = path
        if pair {
            let base = String(path.dropLast(suffix.count))
            // The image file of the same compression first (nifti_findimgname would take x.img for x.hdr.gz).
            let order = compressed ? [".img.gz", ".img", ".IMG.GZ", ".IMG"] : [".img", ".img.gz", ".IMG", ".IMG.GZ"]
            let candidates = order.map { base + $0 }
            guard let image = candidates.first(where: { fm.fileExists(atPath: $0) && !isDirectory($0) }) else {
                throw ReasonError("its image file \((base as NSString).lastPathComponent).img is missing")
            }
            if let problem = FileKind.of(image).problemAsFile() {
                throw ReasonError("its image file \((image as NSString).lastPathComponent) \(problem)")
            }
            dataPath = image
        }
        let dataBytes = raw.dataBytes(layout.grid, volumes: layout.volumes, layout.datatype)
        let (end, overflow) = offset.addingReportingOverflow(dataBytes)
        guard !overflow else { throw ReasonError("vox_offset + data size overflows 64 bits") }
        let dataCompressed = dataPath.lowercased().hasSuffix(".gz")
        let dataFileSize = pair ? fileLength(dataPath) : fileSize
        if !dataCompressed {
            if offset > dataFileSize {
                throw ReasonError("vox_offset \(offset) lies beyond the end of the \(pair ? "image " : "")file (\(dataFileSize) bytes)")
            }
            if end > dataFileSize {
                throw ReasonError("data truncated: the header promises \(dataBytes) bytes from offset \(offset), the \(pair ? "image " : "")file has \(dataFileSize - offset)")
            }
        } else {
            // DEFLATE expands at most ~1032:1; a header promising more than that is lying, and we find out
            // before allocating or inflating anything.
            let (limit, o) = dataFileSize.multipliedReportingOverflow(by: 1032)
            if !o && end > limit + 4096 {
                throw ReasonError("the header promises \(end) bytes, more than a \(dataFileSize)-byte gzip file can hold")
            }
        }

        if layout.volumes > 1 {
            guard let index = options.volumeIndex else {
                throw ReasonError("a 4-D file with \(layout.volumes) volumes: choose one with --volume N "
                                  + "(or extract it with mr2ct reformat --volume N IN OUT)")
            }
            guard (0..<layout.volumes).contains(index) else {
                throw ReasonError("volume index \(index) outside 0…\(layout.volumes - 1)")
            }
        } else if let index = options.volumeIndex, index != 0 {
            throw ReasonError("volume index \(index) asked of a 3-D file")
        }

        guard let image = NIfTIBridge.Image(path: path) else {
            throw ReasonError("nifti_clib could not read the header")
        }
        var header = NIfTIBridge.header(image.header, datatype: layout.datatype)
        header.version = raw.kind == .nifti2 ? 2 : raw.kind == .nifti1 ? 1 : 0
        // As stored: nifti_clib zeroes non-finite scaling fields and may alter unused pixdims.
        header.sclSlope = raw.sclSlope
        header.sclInter = raw.sclInter
        for d in 1...7 { header.pixdim[d] = raw.pixdim[d] }
        let rank = min(3, Int(raw.dim[0]))
        let expected = [layout.grid.nx, layout.grid.ny, layout.grid.nz]
        guard (1...rank).allSatisfy({ header.dim[$0] == expected[$0 - 1] }), Int(image.header.nbyper) == layout.datatype.bitsPerVoxel / 8 else {
            throw ReasonError("nifti_clib read different dimensions than the header holds")
        }
        return Opened(image: image, header: header, grid: layout.grid, volumes: layout.volumes,
                      datatype: layout.datatype, raw: raw, dataPath: dataPath, dataBytes: dataBytes)
    }

    static func fileLength(_ path: String) -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        return Int64(st.st_size)
    }

    static func readChecked(_ path: String, options: NIfTIReadOptions) throws(ReasonError) -> NIfTIReadResult {
        let opened = try open(path, options: options)
        let header = opened.header
        let grid = opened.grid

        // Geometry: sform if code > 0, else qform if code > 0, else pixdim.
        let affine = header.affine
        guard affine.rows.allSatisfy({ r in (0..<4).allSatisfy { r[$0].isFinite } }) else {
            throw ReasonError("the \(header.sformCode > 0 ? "sform" : header.qformCode > 0 ? "qform" : "pixdim") affine has non-finite entries")
        }
        guard affine.inverse != nil else {
            throw ReasonError("the \(header.sformCode > 0 ? "sform" : header.qformCode > 0 ? "qform" : "pixdim") affine is singular (a zero voxel size?)")
        }

        // Scaling (NIfTI-1 §"scl_slope"): none when slope is 0 or not finite; nibabel refuses a bad intercept.
        // From the raw header: nifti_clib replaces a non-finite scl_inter with 0.
        var slope = opened.raw.sclSlope, inter = opened.raw.sclInter
        if slope == 0 || !slope.isFinite {
            slope = 1
            inter = 0
        } else if !inter.isFinite {
            throw ReasonError("scl_slope \(slope) with a non-finite scl_inter \(inter)")
        }

        let bytesPerVoxel = opened.datatype.bitsPerVoxel / 8
        let count = grid.count
        // Types of at most 4 bytes are read into the Float array itself and widened in place (from the last voxel
        // down, so no stored value is overwritten before it is read): the peak is the volume's 4 bytes per voxel,
        // not 4 + the stored size. 8-byte types need a buffer of their own.
        var voxels = [Float](repeating: 0, count: count)
        let separate = bytesPerVoxel > MemoryLayout<Float>.size
        let buffer = separate ? UnsafeMutableRawBufferPointer.allocate(byteCount: count * bytesPerVoxel, alignment: 16) : nil
        defer { buffer?.deallocate() }
        let readOK = voxels.withUnsafeMutableBytes { floats in
            let target = buffer ?? UnsafeMutableRawBufferPointer(rebasing: floats[0..<(count * bytesPerVoxel)])
            return opened.image.readVolume(options.volumeIndex ?? 0, from: opened.dataPath, into: target)
        }
        guard readOK else {
            let compressed = opened.dataPath.lowercased().hasSuffix(".gz")
            if compressed {
                guard let length = NIfTIBridge.streamLength(opened.dataPath) else {
                    throw ReasonError("corrupt gzip stream")
                }
                let offset = Int64(opened.raw.voxOffset)
                if length < offset + opened.dataBytes {
                    throw ReasonError("data truncated: the header promises \(opened.dataBytes) bytes from offset \(offset), the stream has \(max(0, length - offset))")
                }
            }
            throw ReasonError("nifti_clib could not read the voxel data")
        }
        voxels.withUnsafeMutableBufferPointer { out in
            convert(UnsafeRawPointer(buffer?.baseAddress ?? UnsafeMutableRawPointer(out.baseAddress!)),
                    datatype: opened.datatype, slope: slope, inter: inter, into: out)
        }
        var nonFinite = 0
        voxels.withUnsafeMutableBufferPointer { v in
            for i in 0..<v.count where !v[i].isFinite { nonFinite += 1 }
        }
        if nonFinite > 0 {
            switch options.nonFinite {
            case .refuse:
                throw ReasonError("\(nonFinite) of \(count) voxels are NaN or infinite")
            case .replaceWithZero:
                voxels.withUnsafeMutableBufferPointer { v in
                    for i in 0..<v.count where !v[i].isFinite { v[i] = 0 }
                }
            }
        }
        var volumeHeader = header
        // The volume in memory is 3-D: dims 4… collapse to 1 so that writing it "like" its source is 3-D.
        volumeHeader.dim = [3, grid.nx, grid.ny, grid.nz, 1, 1, 1, 1]
        let volume = Volume(grid: grid, voxels: voxels, affine: affine, header: volumeHeader)
        return NIfTIReadResult(volume: volume, replacedNonFiniteVoxels: nonFinite)
    }

    /// Stored values (native byte order) at `raw` → Float32, value = slope·stored + inter, computed in Double.
    /// `raw` may be `out`'s own memory when the stored type has at most 4 bytes: voxels are converted from the last
    /// down, and voxel i's Float (bytes 4i…4i+3) only covers stored voxels ≥ i, already converted.
    static func convert(_ raw: UnsafeRawPointer, datatype: NIfTIDataType, slope: Double, inter: Double,
                        into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        @inline(__always) func map<T>(_ type: T.Type, _ toDouble: (T) -> Double) {
            let width = MemoryLayout<T>.stride
            var i = n - 1
            if slope == 1 && inter == 0 {
                while i >= 0 {
                    out[i] = Float(toDouble(raw.loadUnaligned(fromByteOffset: i * width, as: T.self)))
                    i -= 1
                }
            } else {
                while i >= 0 {
                    out[i] = Float(slope * toDouble(raw.loadUnaligned(fromByteOffset: i * width, as: T.self)) + inter)
                    i -= 1
                }
            }
        }
        switch datatype {
        case .uint8: map(UInt8.self) { Double($0) }
        case .int8: map(Int8.self) { Double($0) }
        case .int16: map(Int16.self) { Double($0) }
        case .uint16: map(UInt16.self) { Double($0) }
        case .int32: map(Int32.self) { Double($0) }
        case .uint32: map(UInt32.self) { Double($0) }
        case .int64: map(Int64.self) { Double($0) }
        case .uint64: map(UInt64.self) { Double($0) }
        case .float32: map(Float.self) { Double($0) }
        case .float64: map(Double.self) { $0 }
        }
    }
}
