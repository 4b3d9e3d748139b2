import Foundation
import NIfTI
import Testing
import TestSupport

/// Issue 16: spatial units honoured at read time, special files refused by type, .img read through its header,
/// in-place widening of stored values, and the 4-D message naming an option that exists.
@Suite struct HardeningTests {
    /// A 4 × 3 × 2 float32 file with pixdim (sx, sy, sz) in `units`, sform code `sform` with srow = diag(pixdim)
    /// and offsets (10, 20, 30) in the same units.
    static func file(units: UInt8, pixdim: [Float], sform: Int16 = 1, in dir: URL, name: String) throws -> URL {
        var spec = MalformedNIfTI.Spec()
        spec.xyztUnits = units
        spec.pixdim = [1, pixdim[0], pixdim[1], pixdim[2], 1, 1, 1, 1]
        spec.sformCode = sform
        spec.srow = [[pixdim[0], 0, 0, 10], [0, pixdim[1], 0, 20], [0, 0, pixdim[2], 30]]
        let url = dir.appendingPathComponent(name)
        try Data(MalformedNIfTI.nii(spec)).write(to: url)
        return url
    }

    /// Hand-computed: 1000 µm = 1 mm, 0.002 m = 2 mm, offsets scaled alike; unknown units are mm.
    static let unitCases: [UnitCase] = [UnitCase(units: 3, stored: 1000, scale: 0.001), UnitCase(units: 1, stored: 0.002, scale: 1000),
                                        UnitCase(units: 2, stored: 1.5, scale: 1), UnitCase(units: 0, stored: 1.5, scale: 1),
                                        UnitCase(units: 3 | 8, stored: 500, scale: 0.001)]
    struct UnitCase: Sendable, CustomTestStringConvertible {
        var units: UInt8, stored: Float, scale: Double
        var testDescription: String { "xyzt_units \(units), pixdim \(stored)" }
    }

    @Test(arguments: unitCases)
    func spacingAndAffineAreConvertedToMillimetres(_ unitCase: UnitCase) throws {
        let (units, stored, scale) = (unitCase.units, unitCase.stored, unitCase.scale)
        let dir = try TestSupport.makeTemporaryDirectory("units")
        defer { try? FileManager.default.removeItem(at: dir) }
        for sform: Int16 in [1, 0] {
            let url = try Self.file(units: units, pixdim: [stored, stored, 2 * stored], sform: sform, in: dir,
                                    name: "u\(units)_\(sform).nii")
            let volume = try NIfTIFile.read(url)
            let mm = Double(stored) * scale
            #expect(abs(volume.spacing.x - mm) < 1e-9 * max(1, mm) && abs(volume.spacing.z - 2 * mm) < 1e-9 * max(1, mm))
            #expect(abs(volume.affine[0, 0] - mm) < 1e-9 * max(1, mm))
            #expect(abs(volume.affine[2, 2] - 2 * mm) < 1e-9 * max(1, mm))
            if sform == 1 {
                #expect(abs(volume.affine[0, 3] - 10 * scale) < 1e-9 * max(1, 10 * scale))
                #expect(abs(volume.affine[2, 3] - 30 * scale) < 1e-9 * max(1, 30 * scale))
            } else {
                #expect(volume.affine[0, 3] == 0)
            }
            // Written like its source: the header's own units and numbers are kept, so the grid is the same.
            let copy = dir.appendingPathComponent("copy_u\(units)_\(sform).nii")
            try NIfTIFile.write(volume, to: copy)
            let back = try NIfTIFile.read(copy)
            #expect(back.header.xyztUnits == Int(units))
            #expect(back.header.pixdim[1] == Double(stored))
            for r in 0..<3 { for c in 0..<4 { #expect(abs(back.affine[r, c] - volume.affine[r, c]) <= 1e-6 * max(1, abs(mm) * 30)) } }
            let summary = try VolumeSummary.of(url)
            #expect(abs(summary.spacing[0] - mm) < 1e-9 * max(1, mm))
            #expect(summary.spatialUnits == ["unknown", "m", "mm", "um"][Int(units & 7)])
        }
    }

    /// A volume whose affine changed in memory gets a fresh header in mm, and says so (units code 2).
    @Test func rebuiltGeometryIsWrittenInMillimetres() throws {
        let dir = try TestSupport.makeTemporaryDirectory("units")
        defer { try? FileManager.default.removeItem(at: dir) }
        var volume = try NIfTIFile.read(try Self.file(units: 3, pixdim: [1000, 1000, 2000], in: dir, name: "um.nii"))
        volume.affine = .scaling(SIMD3(3, 3, 3))
        let out = dir.appendingPathComponent("moved.nii")
        try NIfTIFile.write(volume, to: out)
        let back = try NIfTIFile.read(out)
        #expect(back.header.xyztUnits & 7 == 2)
        #expect(back.spacing == SIMD3(3, 3, 3))
    }

    @Test(arguments: SpecialFile.all)
    func specialFilesAreRefusedByTypeWithoutOpening(_ special: SpecialFile) throws {
        let dir = try TestSupport.makeTemporaryDirectory("special")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("x.nii.gz")
        try MalformedNIfTI.makeSpecial(special, at: url)
        let expected = special.expectedReason
        for attempt in [{ _ = try NIfTIFile.read(url) }, { _ = try NIfTIFile.readHeader(url) }] {
            let error = try #require(throws: NIfTIError.self) { try attempt() }
            #expect(error.reason.contains(expected), "\(error)")
        }
    }

    @Test func aSocketIsRefused() throws {
        let dir = try TestSupport.makeTemporaryDirectory("special")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.nii").path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        let error = try #require(throws: NIfTIError.self) { try NIfTIFile.read(URL(fileURLWithPath: path)) }
        #expect(error.reason.contains("is a socket"))
    }

    /// nibabel and nifti_clib accept the .img of a pair; so does MR2CT, reading its .hdr.
    @Test func anImgPathReadsItsHeader() throws {
        let dir = try TestSupport.makeTemporaryDirectory("img")
        defer { try? FileManager.default.removeItem(at: dir) }
        let values = (0..<24).map { Float($0) * 0.5 - 3 }
        let volume = Volume(grid: GridSize(4, 3, 2), voxels: values, affine: .scaling(SIMD3(1.5, 2, 3)))
        try NIfTIFile.write(volume, to: dir.appendingPathComponent("pair.hdr"))
        let viaImage = try NIfTIFile.read(dir.appendingPathComponent("pair.img"))
        #expect(viaImage.voxels == values)
        #expect(viaImage.affine == (try NIfTIFile.read(dir.appendingPathComponent("pair.hdr"))).affine)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("pair.hdr"))
        let error = try #require(throws: NIfTIError.self) { try NIfTIFile.read(dir.appendingPathComponent("pair.img")) }
        #expect(error.reason.contains("without its header"))
    }

    /// Stored values are widened to Float in place (from the last voxel down): every type and scaling gives the
    /// hand-computed values, including the first and last voxels where an overlap would show.
    @Test(arguments: NIfTIDataType.allCases)
    func storedValuesAreWidenedExactly(_ type: NIfTIDataType) throws {
        let dir = try TestSupport.makeTemporaryDirectory("widen")
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 4 * 3 * 2
        let stored: [Double] = (0..<n).map { Double(($0 * 37) % 100) + (type == .float32 || type == .float64 ? 0.25 : 0) }
        var data = [UInt8]()
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
        for v in stored {
            switch type {
            case .uint8: append(UInt8(v))
            case .int8: append(Int8(v) - 50)
            case .int16: append(Int16(v) - 50)
            case .uint16: append(UInt16(v))
            case .int32: append(Int32(v) - 50)
            case .uint32: append(UInt32(v))
            case .int64: append(Int64(v) - 50)
            case .uint64: append(UInt64(v))
            case .float32: append(Float(v).bitPattern)
            case .float64: append(v.bitPattern)
            }
        }
        let signed: Set<NIfTIDataType> = [.int8, .int16, .int32, .int64]
        var spec = MalformedNIfTI.Spec()
        spec.datatype = Int16(type.rawValue)
        spec.bitpix = Int16(type.bitsPerVoxel)
        spec.sclSlope = 2
        spec.sclInter = -1
        let url = dir.appendingPathComponent("\(type.name).nii")
        try Data(MalformedNIfTI.nii(spec, data: data)).write(to: url)
        let volume = try NIfTIFile.read(url)
        let expected = stored.map { Float(2 * ($0 - (signed.contains(type) ? 50 : 0)) - 1) }
        #expect(volume.voxels == expected)
    }

    @Test func fourDimensionalMessageNamesTheVolumeOption() throws {
        let dir = try TestSupport.makeTemporaryDirectory("4d")
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = try #require(MalformedNIfTI.allCases.first { $0.name == "four_d_without_index" })
        let url = try MalformedNIfTI.materialize(c, in: dir)
        let error = try #require(throws: NIfTIError.self) { try NIfTIFile.read(url) }
        #expect(error.reason.contains("--volume N"))
    }
}
