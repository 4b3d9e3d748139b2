import Foundation
import NIfTI
import Testing
import TestSupport

/// Issue 2 item 3 and issue 9 item 1: every malformed or hostile input is refused with a one-line error that names
/// the file and the reason; nothing crashes, traps, hangs or allocates what the header claims.
@Suite struct MalformedInputTests {
    @Test func atLeastThirtyDistinctCases() {
        let cases = MalformedNIfTI.allCases
        #expect(cases.count >= 30)
        #expect(Set(cases.map(\.name)).count == cases.count)
        #expect(Set(cases.flatMap { $0.files.keys }).count == cases.reduce(0) { $0 + $1.files.count })
    }

    @Test(arguments: MalformedNIfTI.allCases.map(\.name))
    func refusedWithAClearReason(_ name: String) throws {
        let c = try #require(MalformedNIfTI.allCases.first { $0.name == name })
        let dir = try TestSupport.makeTemporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = try MalformedNIfTI.materialize(c, in: dir)
        let before = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        do {
            let volume = try NIfTIFile.read(url)
            Issue.record("\(name): read a \(volume.grid) volume instead of refusing")
        } catch let error as NIfTIError {
            #expect(error.path == url.path)
            #expect(error.reason.contains(c.expectedReason), "\(name): \(error.reason)")
            #expect(!error.description.contains("\n"))
            #expect(error.description == "\(url.path): \(error.reason)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == before)
    }

    @Test func nonFiniteVoxelsCanBeReplacedAndCounted() throws {
        let dir = try TestSupport.makeTemporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = MalformedNIfTI.allCases.filter(\.nonFiniteOnly)
        #expect(cases.count == 2)
        for (c, expected) in zip(cases, [1, 2]) {
            let url = try MalformedNIfTI.materialize(c, in: dir)
            let result = try NIfTIFile.readReporting(url, options: NIfTIReadOptions(nonFinite: .replaceWithZero))
            #expect(result.replacedNonFiniteVoxels == expected)
            #expect(result.volume.voxels.allSatisfy { $0.isFinite })
            // The hand-built ramp 0, 1, 2, … with the bad voxels now 0.
            let ramp = (0..<24).map(Float.init)
            let changed = zip(result.volume.voxels, ramp).filter { $0 != $1 }.count
            #expect(changed == expected - (c.name == "inf_voxels" ? 1 : 0))  // voxel 0 was 0 already
        }
    }

    /// A float64 value beyond Float's range becomes infinite in memory: refused like a stored Inf.
    @Test func float64BeyondFloatRangeIsNonFinite() throws {
        var spec = MalformedNIfTI.Spec()
        spec.datatype = 64
        spec.bitpix = 64
        spec.dim = [3, 2, 1, 1, 1, 1, 1, 1]
        var data = [UInt8](repeating: 0, count: 16)
        for (i, b) in withUnsafeBytes(of: (1e300 as Double).bitPattern.littleEndian, Array.init).enumerated() { data[8 + i] = b }
        let dir = try TestSupport.makeTemporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("huge.nii")
        try Data(MalformedNIfTI.nii(spec, data: data)).write(to: url)
        #expect(throws: NIfTIError.self) { try NIfTIFile.read(url) }
        #expect(try NIfTIFile.read(url, options: .init(nonFinite: .replaceWithZero)).voxels == [0, 0])
    }

    /// The hand-built base file itself is valid: the generator's cases differ from it only where intended.
    @Test func baseFileReads() throws {
        let dir = try TestSupport.makeTemporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("base.nii")
        try Data(MalformedNIfTI.nii()).write(to: url)
        let v = try NIfTIFile.read(url)
        #expect(v.grid == GridSize(4, 3, 2))
        #expect(v.voxels == (0..<24).map(Float.init))
        let gz = dir.appendingPathComponent("base.nii.gz")
        try Data(MalformedNIfTI.gzipStored(MalformedNIfTI.nii())).write(to: gz)
        #expect(try NIfTIFile.read(gz).voxels == v.voxels)
    }
}
