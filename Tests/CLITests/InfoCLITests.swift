import Foundation
import Testing
import TestSupport

/// A decoded `mr2ct info --json` line.
struct InfoLine: Decodable {
    var path: String
    var error: String?
    var dims: [Int]?
    var volumes: Int?
    var affine: [[Double]]?
    var min: Double?
    var max: Double?
    var mean: Double?
    var datatype: String?
    var orientation: String?
    var qform_code: Int?
    var sform_code: Int?
    var scl_slope: Double?
    var scl_inter: Double?
    var replaced_non_finite: Int?
}

func decodeLines(_ stdout: String) throws -> [InfoLine] {
    try stdout.split(separator: "\n").map { try JSONDecoder().decode(InfoLine.self, from: Data($0.utf8)) }
}

func folderListing(_ url: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
}

@Suite struct InfoCLITests {
    let expectations = try! TestSupport.nibabelExpectations()

    /// `info --json` on every fixture and real volume, in one run, agrees with nibabel.
    @Test func jsonAgreesWithNibabel() throws {
        let fixtures = expectations.fixtures.keys.sorted().map { (TestSupport.niftiFixturesDirectory.appendingPathComponent($0), expectations.fixtures[$0]!) }
        let real = expectations.real.keys.sorted().map { (TestSupport.realVolumesDirectory.appendingPathComponent($0), expectations.real[$0]!) }
        let all = fixtures + real
        let result = try TestSupport.runMR2CT(["info", "--json"] + all.map(\.0.path))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        let lines = try decodeLines(result.stdout)
        #expect(lines.count == all.count)
        for (line, (url, e)) in zip(lines, all) {
            let name = url.lastPathComponent
            #expect(line.path == url.path)
            #expect(line.dims == Array(e.shape.prefix(3)), "\(name)")
            #expect(line.volumes == (e.shape.count > 3 ? e.shape[3] : 1))
            #expect(line.datatype == e.datatype && line.qform_code == e.qform_code && line.sform_code == e.sform_code, "\(name)")
            // nibabel's affine, except NIfTI-1 method 1 (diag(pixdim)) for files without codes.
            let want = e.hasNoCodes ? [[e.zooms[0], 0, 0, 0], [0, e.zooms[1], 0, 0], [0, 0, e.zooms[2], 0], [0, 0, 0, 1]] : e.affine
            let got = try #require(line.affine)
            for r in 0..<4 { for c in 0..<4 { #expect(abs(got[r][c] - want[r][c]) <= 1e-4, "\(name) affine[\(r)][\(c)]") } }
            let lo = e.min ?? e.volumes![0].min, hi = e.max ?? e.volumes![0].max
            #expect(abs(line.min! - lo) <= 1e-4 * Swift.max(1, abs(lo)), "\(name) min \(line.min!) vs \(lo)")
            #expect(abs(line.max! - hi) <= 1e-4 * Swift.max(1, abs(hi)), "\(name) max \(line.max!) vs \(hi)")
            if !e.hasNoCodes { #expect(line.orientation == e.orientation, "\(name)") }
            #expect(abs(line.scl_slope! - e.scl_slope) <= 1e-6 && abs(line.scl_inter! - e.scl_inter) <= 1e-4, "\(name)")
        }
    }

    @Test func humanReadableReport() throws {
        let url = TestSupport.realVolumesDirectory.appendingPathComponent("someones_anatomy.nii.gz")
        let result = try TestSupport.runMR2CT(["info", url.path])
        #expect(result.status == 0)
        for fragment in ["dims         57 × 67 × 56", "spacing      2.75 × 2.75 × 2.75 mm", "datatype     uint8 (nifti1)",
                         "scaling      value = 0.352459 × stored + 6.67836", "qform_code   4", "sform_code   4",
                         "orientation  RAS", "min 6.67836  max 96.5554"] {
            #expect(result.stdout.contains(fragment), "missing \(fragment) in\n\(result.stdout)")
        }
    }

    @Test func fourDimensionalVolumesAreSelectable() throws {
        let url = TestSupport.niftiFixturesDirectory.appendingPathComponent("four_d.nii.gz")
        let e = expectations.fixtures["four_d.nii.gz"]!
        let result = try TestSupport.runMR2CT(["info", "--json", "--volume", "2", url.path])
        #expect(result.status == 0)
        let line = try #require(try decodeLines(result.stdout).first)
        #expect(line.volumes == 3 && abs(line.min! - e.volumes![2].min) < 1e-6 && abs(line.max! - e.volumes![2].max) < 1e-6)
        let bad = try TestSupport.runMR2CT(["info", "--volume", "3", url.path])
        #expect(bad.status == 1 && bad.stderr.contains("volume index 3 outside 0…2"))
    }

    /// Every malformed input: exit 1, one stderr line "mr2ct: <path>: <reason>", a JSON error line, nothing written.
    @Test func everyMalformedInputFailsCleanly() throws {
        let dir = try TestSupport.makeTemporaryDirectory("malformed-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = try MalformedNIfTI.materializeAll(in: dir).filter { !$0.case.fourDimensionalOnly }
        #expect(cases.count >= 30)
        let before = folderListing(dir)
        for (c, url) in cases {
            let result = try TestSupport.runMR2CT(["info", "--json", url.path])
            #expect(result.status == 1, "\(c.name): status \(result.status)")
            let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
            #expect(lines.count == 1, "\(c.name): stderr \(result.stderr)")
            #expect(lines.first?.hasPrefix("mr2ct: \(url.path): ") == true, "\(c.name): \(result.stderr)")
            #expect(result.stderr.contains(c.expectedReason), "\(c.name): \(result.stderr)")
            let json = try decodeLines(result.stdout)
            #expect(json.count == 1 && json.first?.path == url.path && json.first?.error?.contains(c.expectedReason) == true)
        }
        #expect(folderListing(dir) == before)
    }

    /// Several files: a bad one does not stop the others, and the status is 1.
    @Test func badFilesDoNotStopGoodOnes() throws {
        let dir = try TestSupport.makeTemporaryDirectory("malformed-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = try MalformedNIfTI.materializeAll(in: dir).filter { !$0.case.fourDimensionalOnly }
        let good = TestSupport.niftiFixturesDirectory.appendingPathComponent("orient_lps.nii.gz").path
        let args = [good] + cases.map(\.url.path) + [good]
        let result = try TestSupport.runMR2CT(["info", "--json"] + args)
        #expect(result.status == 1)
        let lines = try decodeLines(result.stdout)
        #expect(lines.map(\.path) == args)
        #expect(lines.first?.error == nil && lines.last?.error == nil && lines.last?.dims == [5, 6, 7])
        #expect(lines.dropFirst().dropLast().allSatisfy { $0.error != nil })
        #expect(result.stderr.split(separator: "\n").count == cases.count)
    }

    @Test func replaceNonFiniteReportsTheCount() throws {
        let dir = try TestSupport.makeTemporaryDirectory("malformed-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = try #require(MalformedNIfTI.allCases.first { $0.name == "inf_voxels" })
        let url = try MalformedNIfTI.materialize(c, in: dir)
        let result = try TestSupport.runMR2CT(["info", "--json", "--replace-non-finite", url.path])
        #expect(result.status == 0)
        #expect(try decodeLines(result.stdout).first?.replaced_non_finite == 2)
    }

    @Test(arguments: [
        ["info"], ["info", "--volume", "-1", "x.nii"], ["info", "--bogus", "x.nii"], ["info", "--max-voxels", "0", "x.nii"],
        ["reformat", "in.nii"], ["reformat", "--datatype", "uint8", "a.nii", "b.nii"], ["reformat", "a.nii", "b.txt"],
        ["no-such-command"],
    ])
    func usageErrorsExit64(_ arguments: [String]) throws {
        let result = try TestSupport.runMR2CT(arguments)
        #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
    }

    @Test func versionNamesTheLibraries() throws {
        let result = try TestSupport.runMR2CT(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("mr2ct "))
        #expect(result.stdout.contains("nifti_clib: NIFTI2_IO version") && result.stdout.contains("zlib"))
    }
}

/// `mr2ct reformat` and the write path under faults (issue 9 item 3).
@Suite struct ReformatCLITests {
    @Test func reformatsAndKeepsGeometry() throws {
        let dir = try TestSupport.makeTemporaryDirectory("reformat")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = TestSupport.niftiFixturesDirectory.appendingPathComponent("four_d.nii.gz")
        let out = dir.appendingPathComponent("vol1.hdr")
        let r = try TestSupport.runMR2CT(["reformat", "--volume", "1", "--datatype", "int16", input.path, out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(folderListing(dir) == ["vol1.hdr", "vol1.img"])
        let a = try decodeLines(try TestSupport.runMR2CT(["info", "--json", "--volume", "1", input.path]).stdout)[0]
        let b = try decodeLines(try TestSupport.runMR2CT(["info", "--json", out.path]).stdout)[0]
        #expect(a.affine == b.affine && a.dims == b.dims && b.datatype == "int16")
        #expect(b.min == a.min!.rounded(.toNearestOrAwayFromZero) && b.max == a.max!.rounded(.toNearestOrAwayFromZero))
    }

    /// Under `ulimit -f` the write fails with a clear error (EFBIG: SIGXFSZ is ignored), no temporary or partial
    /// file is left, and an existing output is not damaged — for .nii, .nii.gz and .hdr/.img.
    @Test func fileSizeLimitGivesAClearErrorAndKeepsTheOldFile() throws {
        let dir = try TestSupport.makeTemporaryDirectory("ulimit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = TestSupport.realVolumesDirectory.appendingPathComponent("example_ct_sm_3mm.nii.gz").path  // 1.4 MB as float32
        let mr2ct = TestSupport.mr2ctExecutable.path
        for name in ["ct.nii", "ct.nii.gz", "ct.hdr"] {
            let out = dir.appendingPathComponent(name)
            // A good existing output, written without a limit.
            let first = try TestSupport.runMR2CT(["reformat", "--datatype", "int16", input, out.path])
            #expect(first.status == 0)
            let before = folderListing(dir)
            let bytes = try Data(contentsOf: out)
            let limited = try TestSupport.run(URL(fileURLWithPath: "/bin/bash"),
                                              ["-c", "ulimit -f 64; exec \"$0\" reformat --overwrite \"$1\" \"$2\"", mr2ct, input, out.path])
            #expect(limited.status == 1, "\(name): status \(limited.status) \(limited.stderr)")
            #expect(limited.stderr.hasPrefix("mr2ct: \(out.path): write failed: File too large"), "\(name): \(limited.stderr)")
            #expect(folderListing(dir) == before, "\(name): \(folderListing(dir))")
            #expect(try Data(contentsOf: out) == bytes)
        }
    }

    @Test func unreadableInputWritesNothing() throws {
        let dir = try TestSupport.makeTemporaryDirectory("reformat")
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = try #require(MalformedNIfTI.allCases.first { $0.name == "vox_offset_beyond_file" })
        let bad = try MalformedNIfTI.materialize(c, in: dir)
        let out = dir.appendingPathComponent("out.nii.gz")
        let r = try TestSupport.runMR2CT(["reformat", bad.path, out.path])
        #expect(r.status == 1 && r.stderr == "mr2ct: \(bad.path): vox_offset 1000000 lies beyond the end of the file (448 bytes)\n")
        #expect(folderListing(dir) == [bad.lastPathComponent])
    }
}
