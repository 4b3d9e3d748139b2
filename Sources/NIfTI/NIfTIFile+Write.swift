import Foundation
import MR2CTSupport

extension NIfTIFile {
    /// Writes `volume` like its header: dims, pixdim, qform, sform, both codes and xyzt_units are copied, so an
    /// output sits exactly on its source's grid. `.float32` stores the values as they are; `.int16` rounds
    /// (half away from zero) and clips to −32768…32767 (NaN → 0), e.g. for synthetic CT in HU. scl_slope 1,
    /// scl_inter 0, so the stored values are exact. The format follows the name: .nii, .nii.gz, or an .hdr/.img
    /// pair for .hdr (.hdr.gz: both gzipped). Always NIfTI-1 (a NIfTI-2 source's double-precision geometry is
    /// rounded to float32), except for dimensions above 32767, which need NIfTI-2 (.hdr pairs only). Atomic: temporary files beside the target, checked, then renamed;
    /// on failure nothing is left behind and an existing file is untouched.
    ///
    /// If the header's geometry no longer matches `volume.affine` or `volume.grid` (a volume whose affine was
    /// changed in memory), the header's qform and sform are rebuilt from the affine as `Volume(grid:voxels:affine:)`
    /// does, so the file never contradicts the volume.
    public static func write(_ volume: Volume, to url: URL, as datatype: NIfTIDataType = .float32) throws {
        let path = url.path
        do {
            try writeChecked(volume, to: url, as: datatype)
        } catch {
            throw NIfTIError(path: path, reason: error.reason)
        }
    }

    static func headerForWriting(_ volume: Volume) -> NIfTIHeader {
        var header = volume.header
        let grid = volume.grid
        let dimsMatch = header.dim.count == 8 && header.pixdim.count == 8 && header.srow.count == 3
            && header.dim[1] == grid.nx && header.dim[2] == grid.ny && header.dim[3] == grid.nz
        var geometryMatches = dimsMatch
        if dimsMatch {
            let a = header.affine, b = volume.affine
            let scale = max(1, (0..<3).map { r in (0..<4).map { abs(b[r, $0]) }.max()! }.max()!)
            geometryMatches = (0..<3).allSatisfy { r in (0..<4).allSatisfy { abs(a[r, $0] - b[r, $0]) <= 1e-6 * scale } }
        }
        if !geometryMatches {
            let fresh = NIfTIHeader(grid: grid, affine: volume.affine)
            header.dim = fresh.dim
            header.pixdim = fresh.pixdim
            header.qformCode = fresh.qformCode
            header.sformCode = fresh.sformCode
            header.quaternB = fresh.quaternB
            header.quaternC = fresh.quaternC
            header.quaternD = fresh.quaternD
            header.qoffset = fresh.qoffset
            header.srow = fresh.srow
            // The fresh geometry is in millimetres: say so when the source stored metres or micrometres.
            if header.millimetresPerSpatialUnit != 1 { header.xyztUnits = (header.xyztUnits & ~0x07) | 2 }
        }
        // NIfTI-1 unless a dimension does not fit its int16 dim[]: Debian's nifti_clib 3.0.1 treats only NIfTI-1
        // as a single file when writing, so a NIfTI-2 .nii would get its header overwritten by the data.
        header.version = max(grid.nx, grid.ny, grid.nz) > Int(Int16.max) ? 2 : 1
        return header
    }

    static func writeChecked(_ volume: Volume, to url: URL, as datatype: NIfTIDataType) throws(ReasonError) {
        guard datatype == .float32 || datatype == .int16 else {
            throw ReasonError("writing \(datatype.name) is not supported (float32 or int16)")
        }
        let lower = url.lastPathComponent.lowercased()
        guard let suffix = volumeSuffixes.first(where: { lower.hasSuffix($0) && lower.count > $0.count }) else {
            throw ReasonError("not a NIfTI file name (expected .nii, .nii.gz, .hdr or .hdr.gz)")
        }
        guard volume.voxels.count == volume.grid.count, volume.grid.count > 0 else {
            throw ReasonError("volume has \(volume.voxels.count) voxels for a \(volume.grid) grid")
        }
        let folder = url.deletingLastPathComponent().path
        guard isDirectory(folder) else { throw ReasonError("no such folder \(folder)") }
        if isDirectory(url.path) { throw ReasonError("is a folder") }

        let header = headerForWriting(volume)
        let cHeader = NIfTIBridge.cHeader(header, grid: volume.grid, datatype: datatype, slope: 1, inter: 0)
        let pair = suffix.hasPrefix(".hdr")
        if header.version == 2 && !pair {
            throw ReasonError("a dimension above 32767 needs NIfTI-2, which nifti_clib 3.0.1 writes only as an .hdr/.img pair")
        }

        // Temporary names keep the extension(s) so nifti_clib picks the format; a pair shares one stem.
        let temporary = AtomicFile.temporaryURL(for: url).path
        let finalImage: String? = pair ? imageName(forHeader: url.path, suffix: suffix) : nil
        let temporaryImage: String? = pair ? imageName(forHeader: temporary, suffix: suffix) : nil
        var created: [String] = []
        func cleanUp() { for p in created { unlink(p) } }

        for p in [temporary] + (temporaryImage.map { [$0] } ?? []) {
            let fd = Foundation.open(p, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            guard fd >= 0 else {
                let reason = String(cString: strerror(errno))
                cleanUp()
                throw ReasonError("cannot create a file in \(folder): \(reason)")
            }
            close(fd)
            created.append(p)
        }

        let status: Int32
        switch datatype {
        case .int16:
            var stored = [Int16](repeating: 0, count: volume.voxels.count)
            volume.voxels.withUnsafeBufferPointer { src in
                stored.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<src.count {
                        let v = src[i]
                        dst[i] = v.isNaN ? 0 : Int16(max(-32768, min(32767, v.rounded(.toNearestOrAwayFromZero))))
                    }
                }
            }
            status = stored.withUnsafeBytes { NIfTIBridge.write(path: temporary, header: cHeader, bytes: $0) }
        default:
            status = volume.voxels.withUnsafeBytes { NIfTIBridge.write(path: temporary, header: cHeader, bytes: $0) }
        }
        guard status == 0 else {
            cleanUp()
            throw ReasonError("write failed: \(String(cString: strerror(status)))")
        }
        // nifti_clib does not check every write (the header of a pair, extenders): read the result back.
        let expectedData = Int64(volume.grid.count) * Int64(datatype.bitsPerVoxel / 8)
        do throws(ReasonError) {
            try verifyWritten(header: temporary, image: temporaryImage, dataBytes: expectedData)
            for p in created { try syncFile(p) }
            if let temporaryImage, let finalImage {
                guard rename(temporaryImage, finalImage) == 0 else {
                    throw ReasonError("cannot rename into place: \(String(cString: strerror(errno)))")
                }
                created.removeAll { $0 == temporaryImage }
            }
            guard rename(temporary, url.path) == 0 else {
                throw ReasonError("cannot rename into place: \(String(cString: strerror(errno)))")
            }
            created.removeAll()
        } catch {
            cleanUp()
            throw error
        }
    }

    /// x.hdr → x.img, x.hdr.gz → x.img.gz (keeping the case of the extension).
    static func imageName(forHeader path: String, suffix: String) -> String {
        let base = String(path.dropLast(suffix.count))
        let ext = String(path.suffix(suffix.count))
        let upper = ext.uppercased() == ext
        let image = suffix.hasSuffix(".gz") ? ".img.gz" : ".img"
        return base + (upper ? image.uppercased() : image)
    }

    /// Checks a freshly written file (pair): a valid header, and exactly the data it promises.
    static func verifyWritten(header: String, image: String?, dataBytes: Int64) throws(ReasonError) {
        let failed = ReasonError("write failed: the written file does not read back (disk full or file-size limit?)")
        guard let prefix = NIfTIBridge.prefix(header, count: 540),
              let raw = try? RawHeader.parse(prefix) else { throw failed }
        let offset = Int64(raw.voxOffset)
        if let image {
            guard let h = NIfTIBridge.streamLength(header), h >= Int64(raw.headerSize),
                  let d = NIfTIBridge.streamLength(image), d == offset + dataBytes else { throw failed }
        } else {
            guard let d = NIfTIBridge.streamLength(header), d == offset + dataBytes else { throw failed }
        }
    }

    static func syncFile(_ path: String) throws(ReasonError) {
        let fd = Foundation.open(path, O_RDONLY)
        guard fd >= 0 else { throw ReasonError("cannot reopen for fsync: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw ReasonError("fsync failed: \(String(cString: strerror(errno)))") }
    }
}
