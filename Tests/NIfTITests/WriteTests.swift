import Foundation
import NIfTI
import Testing
import TestSupport

@Suite struct WriteTests {
    let expectations = try! TestSupport.nibabelExpectations()

    /// Every 3-D fixture, read, written as float32 and int16 in every container, read back: same values (int16:
    /// rounded and clipped), same dims, pixdim, codes, units and affine. With MR2CT_ROUNDTRIP_DIR set, the
    /// written files stay there with a manifest for `make_fixtures.py --verify-roundtrip`.
    @Test func roundTripEveryFixtureInEveryContainer() throws {
        let keep = ProcessInfo.processInfo.environment["MR2CT_ROUNDTRIP_DIR"].map { URL(fileURLWithPath: $0) }
        let dir = try keep ?? TestSupport.makeTemporaryDirectory()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(at: dir) } }
        var manifest: [[String: String]] = []
        let containers = [".nii", ".nii.gz", ".hdr", ".hdr.gz"]
        for (index, (name, e)) in expectations.fixtures.sorted(by: { $0.key < $1.key }).enumerated() where e.shape.count == 3 {
            let source = TestSupport.niftiFixturesDirectory.appendingPathComponent(name)
            let volume = try NIfTIFile.read(source)
            for datatype in [NIfTIDataType.float32, .int16] {
                let suffix = containers[(index + (datatype == .int16 ? 1 : 0)) % containers.count]
                let out = dir.appendingPathComponent("\(name.replacingOccurrences(of: ".", with: "_"))_\(datatype.name)\(suffix)")
                try NIfTIFile.write(volume, to: out, as: datatype)
                manifest.append(["written": out.lastPathComponent, "source": source.path, "datatype": datatype.name])
                let back = try NIfTIFile.read(out)
                #expect(back.grid == volume.grid, "\(name)")
                #expect(back.header.datatype == datatype)
                let expected = datatype == .float32 ? volume.voxels : volume.voxels.map {
                    Float(max(-32768, min(32767, $0.rounded(.toNearestOrAwayFromZero))))
                }
                #expect(back.voxels == expected, "\(name) → \(out.lastPathComponent)")
                #expect(back.header.qformCode == volume.header.qformCode && back.header.sformCode == volume.header.sformCode)
                #expect(back.header.xyztUnits == volume.header.xyztUnits)
                #expect(back.header.sclSlope == 1 && back.header.sclInter == 0)
                // Written as NIfTI-1: a NIfTI-2 source's geometry is rounded to float32 (exact otherwise).
                let tolerance = volume.header.version == 2 ? 1e-6 : 0
                #expect(back.header.version == 1)
                for a in 0...3 { #expect(abs(back.header.pixdim[a] - volume.header.pixdim[a]) <= tolerance * 100, "\(name) pixdim") }
                for r in 0..<4 { for c in 0..<4 {
                    #expect(abs(back.affine[r, c] - volume.affine[r, c]) <= tolerance * 100, "\(name) affine")
                } }
                if volume.header.qformCode > 0 {
                    let a = back.header.qformAffine, b = volume.header.qformAffine
                    for r in 0..<3 { for c in 0..<4 { #expect(abs(a[r, c] - b[r, c]) <= 1e-5, "\(name) qform") } }
                }
                if datatype == .float32 && suffix == ".hdr" {
                    #expect(FileManager.default.fileExists(atPath: out.deletingPathExtension().appendingPathExtension("img").path))
                }
            }
        }
        if keep != nil {
            let data = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: dir.appendingPathComponent("manifest.json"))
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test func int16RoundsHalfAwayFromZeroAndClips() throws {
        let values: [Float] = [-40000, -32768.4, -1.5, -0.5, 0.4, 0.5, 1.5, 2.5, 32767.4, 40000, .nan, .infinity]
        let volume = Volume(grid: GridSize(values.count, 1, 1), voxels: values, affine: .identity)
        let dir = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("hu.nii.gz")
        try NIfTIFile.write(volume, to: url, as: .int16)
        let back = try NIfTIFile.read(url)
        #expect(back.voxels == [-32768, -32768, -2, -1, 0, 1, 2, 3, 32767, 32767, 0, 32767])
    }

    /// A new volume's header carries its affine as sform (code 2) AND qform (code 1), checked against the
    /// quaternion worked out by hand for a 90° rotation about z with an x flip (qfac −1).
    @Test func newVolumeEncodesAffineInSformAndQform() throws {
        // Columns: i → +y (2 mm), j → −x (3 mm), k → −z (4 mm): rotation Rz(90°) times diag(1, 1, −1) → qfac −1.
        let affine = Affine(rows: [SIMD4(0, -3, 0, 10), SIMD4(2, 0, 0, -20), SIMD4(0, 0, -4, 30), SIMD4(0, 0, 0, 1)])
        let volume = Volume(grid: GridSize(4, 3, 2), voxels: (0..<24).map(Float.init), affine: affine)
        let h = volume.header
        #expect(h.sformCode == 2 && h.qformCode == 1)
        #expect(h.pixdim[0] == -1 && h.pixdim[1] == 2 && h.pixdim[2] == 3 && h.pixdim[3] == 4)
        // Rz(90°): quaternion (cos 45°, 0, 0, sin 45°) → b = 0, c = 0, d = √½.
        #expect(abs(h.quaternB) < 1e-12 && abs(h.quaternC) < 1e-12 && abs(h.quaternD - 0.5.squareRoot()) < 1e-12)
        #expect(h.qoffset == SIMD3(10, -20, 30))
        for r in 0..<4 { for c in 0..<4 { #expect(abs(h.qformAffine[r, c] - affine[r, c]) < 1e-12) } }
        let dir = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("new.nii")
        try NIfTIFile.write(volume, to: url)
        let back = try NIfTIFile.read(url)
        #expect(back.affine == affine)
        for r in 0..<4 { for c in 0..<4 { #expect(abs(back.header.qformAffine[r, c] - affine[r, c]) < 1e-6) } }
        #expect(back.affine.orientationCode == "ALI")
        // The header bytes (nifti1.h: dim int16[8] at 40, pixdim float32[8] at 76): unused dimensions are 1, as
        // nibabel writes them, and their spacings 1.
        let bytes = [UInt8](try Data(contentsOf: url))
        let dim = (0..<8).map { Int16(bytes[40 + 2 * $0]) | Int16(bytes[41 + 2 * $0]) << 8 }
        #expect(dim == [3, 4, 3, 2, 1, 1, 1, 1])
        let pixdim = (0..<8).map { i in
            Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[76 + 4 * i + $1]) << (8 * $1) })
        }
        #expect(pixdim == [-1, 2, 3, 4, 1, 1, 1, 1])
    }

    /// If the affine changed in memory, the file follows the affine, not the stale header.
    @Test func staleHeaderGeometryIsRebuiltFromTheAffine() throws {
        var volume = try NIfTIFile.read(TestSupport.niftiFixturesDirectory.appendingPathComponent("orient_lps.nii.gz"))
        volume.affine = Affine.scaling(SIMD3(2, 2, 2))
        let dir = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("moved.nii.gz")
        try NIfTIFile.write(volume, to: url)
        #expect(try NIfTIFile.read(url).affine == Affine.scaling(SIMD3(2, 2, 2)))
    }

    /// nifti_clib, given x.nii.gz, loads a sibling x.nii when one exists; MR2CT reads exactly the file named.
    @Test func siblingWithOtherCompressionIsNotRead() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = Volume(grid: GridSize(2, 2, 2), voxels: Array(repeating: 1, count: 8), affine: .identity)
        let b = a.replacingVoxels(Array(repeating: 2, count: 8))
        try NIfTIFile.write(a, to: dir.appendingPathComponent("x.nii"))
        try NIfTIFile.write(b, to: dir.appendingPathComponent("x.nii.gz"))
        try NIfTIFile.write(a, to: dir.appendingPathComponent("y.hdr"))
        try NIfTIFile.write(b, to: dir.appendingPathComponent("y.hdr.gz"))
        #expect(try NIfTIFile.read(dir.appendingPathComponent("x.nii")).voxels.allSatisfy { $0 == 1 })
        #expect(try NIfTIFile.read(dir.appendingPathComponent("x.nii.gz")).voxels.allSatisfy { $0 == 2 })
        #expect(try NIfTIFile.read(dir.appendingPathComponent("y.hdr")).voxels.allSatisfy { $0 == 1 })
        #expect(try NIfTIFile.read(dir.appendingPathComponent("y.hdr.gz")).voxels.allSatisfy { $0 == 2 })
    }

    @Test func failedWritesLeaveNothingAndKeepTheOldFile() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let volume = Volume(grid: GridSize(3, 3, 3), voxels: Array(repeating: 7, count: 27), affine: .identity)
        let good = dir.appendingPathComponent("good.nii")
        try NIfTIFile.write(volume, to: good)
        let before = try Data(contentsOf: good)
        // Unsupported datatype, bad name, missing folder: refused before anything is written.
        #expect(throws: NIfTIError.self) { try NIfTIFile.write(volume, to: good, as: .uint8) }
        #expect(throws: NIfTIError.self) { try NIfTIFile.write(volume, to: dir.appendingPathComponent("x.txt")) }
        #expect(throws: NIfTIError.self) { try NIfTIFile.write(volume, to: dir.appendingPathComponent("no/x.nii")) }
        #expect(try Data(contentsOf: good) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["good.nii"])
        // A read-only folder: a clear error, no temporary file.
        let locked = dir.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: false)
        chmod(locked.path, 0o555)
        defer { chmod(locked.path, 0o755) }
        if getuid() != 0 {
            do {
                try NIfTIFile.write(volume, to: locked.appendingPathComponent("x.nii"))
                Issue.record("write into a read-only folder succeeded")
            } catch let error as NIfTIError {
                #expect(error.reason.contains("cannot create"))
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: locked.path).isEmpty)
        }
    }
}
