import Foundation
import NIfTI
import Testing
import TestSupport

@Test func phantomCommandWritesPairedFoldersAndNDJSON() throws {
    let dir = try TestSupport.makeTemporaryDirectory("phantom-cli")
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("set")
    let result = try TestSupport.runMR2CT(["phantom", "--out", out.path, "--subjects", "2", "--seed", "5",
                                           "--first", "10", "--size", "40x48x16", "--spacing", "4x4x9",
                                           "--outputs", "mr,ct,preview"])
    #expect(result.status == 0, "\(result.stderr)")
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.count == 2)
    let records = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
    #expect(records.map { $0["subject"] as? String } == ["sub-010", "sub-011"])
    #expect(records[0]["mr"] as? String == out.appendingPathComponent("mr/sub-010.nii.gz").path)
    #expect(records[0]["orientation"] as? String == "LPS")
    #expect(records[0]["labels"] == nil)
    for stem in ["sub-010", "sub-011"] {
        let mr = try NIfTIFile.read(out.appendingPathComponent("mr/\(stem).nii.gz"))
        let ct = try NIfTIFile.read(out.appendingPathComponent("ct/\(stem).nii.gz"))
        #expect(mr.grid == GridSize(40, 48, 16) && ct.grid == mr.grid)
        #expect(mr.header.datatype == .int16 && ct.header.datatype == .int16)
        #expect(abs(mr.spacing.z - 9) < 1e-6)
        #expect(ct.voxels.min()! >= -1024 && ct.voxels.max()! > 1000)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("preview/\(stem).png").path))
    }
    #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("labels").path))
    // Progress went to stderr, not stdout.
    #expect(result.stderr.contains("phantom"))

    // The same command again gives byte-identical volumes (deterministic for a seed).
    let again = dir.appendingPathComponent("again")
    let second = try TestSupport.runMR2CT(["phantom", "--out", again.path, "--subjects", "1", "--seed", "5",
                                           "--first", "11", "--size", "40x48x16", "--spacing", "4x4x9",
                                           "--outputs", "ct", "--quiet"])
    #expect(second.status == 0 && second.stderr.isEmpty)
    let a = try NIfTIFile.read(out.appendingPathComponent("ct/sub-011.nii.gz"))
    let b = try NIfTIFile.read(again.appendingPathComponent("ct/sub-011.nii.gz"))
    #expect(a.voxels == b.voxels)
    #expect(!FileManager.default.fileExists(atPath: again.appendingPathComponent("mr").path))
}

@Test func phantomCommandRejectsBadOptionsWithUsageStatus() throws {
    let dir = try TestSupport.makeTemporaryDirectory("phantom-cli")
    defer { try? FileManager.default.removeItem(at: dir) }
    for arguments in [["--size", "10x10"], ["--spacing", "2x2xq"], ["--outputs", "mr,xyz"], ["--subjects", "0"],
                      ["--size", "4x96x36"], ["--ct-noise", "-3"]] {
        let result = try TestSupport.runMR2CT(["phantom", "--out", dir.path] + arguments)
        #expect(result.status == 64, "\(arguments): \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }
    // An unwritable output: status 1 and a one-line error naming the path.
    let blocker = dir.appendingPathComponent("file")
    try Data("x".utf8).write(to: blocker)
    let result = try TestSupport.runMR2CT(["phantom", "--out", blocker.path, "--subjects", "1", "--size", "16x16x8",
                                           "--quiet"])
    #expect(result.status == 1)
    #expect(result.stderr.hasPrefix("mr2ct: " + blocker.path))
    #expect(result.stderr.split(separator: "\n").count == 1)
}
