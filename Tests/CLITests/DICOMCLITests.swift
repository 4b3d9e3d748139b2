import DICOM
import Foundation
import NIfTI
import Testing
import TestSupport

/// DICOM in and out through the built tool (issue 19): MR series from Tests/TestSupport/Fixtures/dicom (made by
/// pydicom, see make_dicom_fixtures.py) converted to CT series, checked by our reader, by dcm2niix (the CT lands on
/// the MR's grid) and by dciodvfy (dicom3tools: no IOD errors); hostile series refused one line each.
@Suite(.serialized)
struct DICOMCLITests {
    static var series: URL { TestSupport.fixturesDirectory.appendingPathComponent("dicom/series") }
    static var model: String { TestSupport.packageRoot.appendingPathComponent("SampleData/model/phantom_G_A.safetensors").path }
    static let uidRoot = "1.2.826.0.1.3680043.10.1019.9"
    static let hostile = ["duplicate_slices", "gantry_tilt", "huge_matrix", "jpeg2000", "missing_slice", "mixed_sizes",
                          "multi_frame", "non_image_only", "sheared_no_tag", "truncated_file", "uneven_spacing", "wrong_value_length"]

    static func lines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func tool(_ name: String) -> URL? {
        ["/usr/bin/", "/usr/local/bin/"].map { URL(fileURLWithPath: $0 + name) }.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Every voxel of `a` lands, through both affines, on a voxel of `b` (index integral within 1e-3) of equal value.
    static func sameWorldGrid(_ a: Volume, _ b: Volume) -> (worstIndex: Double, mismatches: Int) {
        guard a.grid.count == b.grid.count, let inverse = b.affine.inverse else { return (.infinity, a.grid.count) }
        var worst = 0.0, mismatches = 0
        for k in 0..<a.grid.nz { for j in 0..<a.grid.ny { for i in 0..<a.grid.nx {
            let r = inverse.apply(a.affine.apply(SIMD3(Double(i), Double(j), Double(k))))
            let ri = SIMD3(r.x.rounded(), r.y.rounded(), r.z.rounded())
            worst = max(worst, abs(r.x - ri.x), abs(r.y - ri.y), abs(r.z - ri.z))
            let (x, y, z) = (Int(ri.x), Int(ri.y), Int(ri.z))
            if !((0..<b.grid.nx).contains(x) && (0..<b.grid.ny).contains(y) && (0..<b.grid.nz).contains(z)) || b[x, y, z] != a[i, j, k] {
                mismatches += 1
            }
        } } }
        return (worst, mismatches)
    }

    @Test func convertsSeriesToCTSeriesOnTheMRGridAndRefusesHostileOnes() throws {
        let dir = try TestSupport.makeTemporaryDirectory("dicom-convert")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("sct"), nifti = dir.appendingPathComponent("nifti")
        let good = ["oblique_big_endian", "axial_rle", "oblique_jpegls"]
        let inputs = (good + ["gantry_tilt", "missing_slice", "truncated_file"]).map { Self.series.appendingPathComponent($0).path }
        let result = try TestSupport.runMR2CT(["convert", "--quiet", "--model", Self.model, "--format", "dicom",
                                               "--uid-root", Self.uidRoot, "-o", out.path] + inputs)
        #expect(result.status == 1, "\(result.stderr)")
        let errors = result.stderr.split(separator: "\n")
        #expect(errors.count == 3, "\(result.stderr)")
        for name in ["gantry_tilt", "missing_slice", "truncated_file"] {
            #expect(errors.filter { $0.hasPrefix("mr2ct: " + Self.series.appendingPathComponent(name).path + ": ") }.count == 1, "\(name): \(result.stderr)")
        }
        let json = Self.lines(result.stdout)
        #expect(json.count == 6)
        #expect(json.filter { $0["status"] as? String == "ok" }.count == 3)
        // The same MRs as NIfTI: the DICOM series must hold the same HU.
        let niftiRun = try TestSupport.runMR2CT(["convert", "--quiet", "--model", Self.model, "-o", nifti.path]
                                                + good.map { Self.series.appendingPathComponent($0).path })
        #expect(niftiRun.status == 0, "\(niftiRun.stderr)")

        for name in good {
            let folder = out.appendingPathComponent(name + "_sct")
            let mr = try DICOMFolder.series(at: DICOMSeriesLocation(folder: Self.series.appendingPathComponent(name)))
            let ct = try DICOMFolder.series(at: DICOMSeriesLocation(folder: folder))
            // Our reader: exactly the MR's grid, identity shared, UIDs new, CT Image Storage.
            #expect(ct.grid == mr.grid)
            var worst = 0.0
            for r in 0..<3 { for c in 0..<4 { worst = max(worst, abs(ct.affine[r, c] - mr.affine[r, c])) } }
            #expect(worst < 1e-9, "\(name): affine differs by \(worst)")
            #expect(ct.studyInstanceUID == mr.studyInstanceUID && ct.frameOfReferenceUID == mr.frameOfReferenceUID)
            #expect(ct.seriesInstanceUID != mr.seriesInstanceUID && ct.seriesInstanceUID.hasPrefix(Self.uidRoot + "."))
            #expect(ct.seriesInstanceUID.count <= 64)
            #expect(ct.modality == "CT" && ct.slices.allSatisfy { $0.sopClassUID == DICOMSeriesWriter.ctImageStorage })
            #expect(Set(ct.slices.map(\.sopInstanceUID)).count == ct.slices.count)
            #expect(ct.seriesDescription.hasPrefix("mr2ct ") && ct.seriesDescription.contains("phantom_G_A"))
            let ctVolume = try ct.readVolume()
            let niftiVolume = try NIfTIFile.read(nifti.appendingPathComponent(name + "_sct.nii.gz"))
            #expect(ctVolume.voxels == niftiVolume.voxels, "\(name): DICOM HU differ from the NIfTI output's")
            #expect(ctVolume.voxels.contains { $0 > -1024 }, "\(name): an all-air CT says nothing")

            // dcm2niix reads the CT series onto the MR's grid (1e-3 mm) with our voxel values.
            let dcm2niix = try #require(Self.tool("dcm2niix"), "dcm2niix missing (Pipelines/test.sh installs it)")
            let converted = dir.appendingPathComponent("dcm2niix-" + name)
            try FileManager.default.createDirectory(at: converted, withIntermediateDirectories: true)
            let run = try TestSupport.run(dcm2niix, ["-z", "n", "-b", "n", "-f", "ct", "-o", converted.path, folder.path])
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
            let reference = try NIfTIFile.read(converted.appendingPathComponent("ct.nii"))
            let (index, mismatches) = Self.sameWorldGrid(ctVolume, reference)
            #expect(index < 1e-3 && mismatches == 0, "\(name): dcm2niix grid off by \(index) voxel, \(mismatches) voxels differ")
            let mrVolume = try mr.readVolume()
            let (mrIndex, _) = Self.sameWorldGrid(mrVolume, reference)
            #expect(mrIndex < 1e-3, "\(name): dcm2niix's CT grid is not the MR's")

            // dciodvfy: no errors against the CT Image IOD.
            let dciodvfy = try #require(Self.tool("dciodvfy"), "dciodvfy missing (Pipelines/test.sh installs dicom3tools)")
            for file in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
                let check = try TestSupport.run(dciodvfy, [folder.appendingPathComponent(file).path])
                let problems = (check.stdout + check.stderr).split(separator: "\n").filter { $0.hasPrefix("Error") }
                #expect(problems.isEmpty, "\(name)/\(file): \(problems)")
            }
        }
        // No temporary folder left behind; again without --overwrite is refused, with it replaced (new UIDs).
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }.isEmpty)
        let first = try DICOMFolder.series(at: DICOMSeriesLocation(folder: out.appendingPathComponent("axial_rle_sct"))).seriesInstanceUID
        let input = Self.series.appendingPathComponent("axial_rle").path
        let again = try TestSupport.runMR2CT(["convert", "--quiet", "--model", Self.model, "--format", "dicom", "-o", out.path, input])
        #expect(again.status == 1 && again.stderr.contains("exists"), "\(again.stderr)")
        let replaced = try TestSupport.runMR2CT(["convert", "--quiet", "--model", Self.model, "--format", "dicom", "--overwrite", "-o", out.path, input])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        let second = try DICOMFolder.series(at: DICOMSeriesLocation(folder: out.appendingPathComponent("axial_rle_sct")))
        #expect(second.seriesInstanceUID != first && second.seriesInstanceUID.hasPrefix("2.25."))
        #expect(second.slices.count == 5)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }.isEmpty)
    }

    @Test func niftiMRNeedsATemplateOnItsGrid() throws {
        let dir = try TestSupport.makeTemporaryDirectory("dicom-template")
        defer { try? FileManager.default.removeItem(at: dir) }
        let series = Self.series.appendingPathComponent("oblique_jpegls").path
        let mr = dir.appendingPathComponent("mr.nii.gz")
        let reformat = try TestSupport.runMR2CT(["reformat", series, mr.path])
        #expect(reformat.status == 0, "\(reformat.stderr)")
        let refused = try TestSupport.runMR2CT(["convert", "--quiet", "--model", Self.model, "--format", "dicom", "-o", dir.appendingPathComponent("a").path, mr.path])
        #expect(refused.status == 1 && refused.stderr.contains("--dicom-template"), "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").count == 1)
        let wrong = try TestSupport.runMR2CT(["convert", "--quiet", "--model", Self.model, "--format", "dicom", "--dicom-template",
                                              Self.series.appendingPathComponent("axial_rle").path, "-o", dir.appendingPathComponent("b").path, mr.path])
        #expect(wrong.status == 1 && wrong.stderr.contains("not on the MR's grid"), "\(wrong.stderr)")
        let out = dir.appendingPathComponent("c")
        let ok = try TestSupport.runMR2CT(["convert", "--quiet", "--model", Self.model, "--format", "dicom", "--dicom-template", series,
                                           "-o", out.path, mr.path])
        #expect(ok.status == 0, "\(ok.stderr)")
        let ct = try DICOMFolder.series(at: DICOMSeriesLocation(folder: out.appendingPathComponent("mr_sct")))
        let source = try DICOMFolder.series(at: DICOMSeriesLocation(folder: URL(fileURLWithPath: series)))
        #expect(ct.grid == source.grid && ct.frameOfReferenceUID == source.frameOfReferenceUID)
        let usage = try TestSupport.runMR2CT(["convert", "--model", Self.model, "--uid-root", "1.02.3", "--format", "dicom", "-o", out.path, mr.path])
        #expect(usage.status == 64)
        let misplaced = try TestSupport.runMR2CT(["convert", "--model", Self.model, "--uid-root", "1.2.3", "-o", out.path, mr.path])
        #expect(misplaced.status == 64)
    }

    /// `info` on the fixture root: every series described or refused, one stderr line per refusal.
    @Test func infoDescribesEverySeriesOfAFolder() throws {
        let result = try TestSupport.runMR2CT(["info", "--json", Self.series.path])
        #expect(result.status == 1)
        let json = Self.lines(result.stdout)
        let failed = json.filter { $0["error"] != nil }, described = json.filter { $0["error"] == nil }
        #expect(failed.count == Self.hostile.count, "\(failed.map { $0["path"] ?? "" })")
        #expect(described.count == 12)
        #expect(described.allSatisfy { $0["format"] as? String == "dicom" && ($0["series_instance_uid"] as? String) != nil })
        #expect(result.stderr.split(separator: "\n").count == Self.hostile.count, "\(result.stderr)")
        for name in Self.hostile {
            #expect(result.stderr.contains("mr2ct: " + Self.series.appendingPathComponent(name).path), "\(name)")
        }
    }

    /// mask, evaluate and reformat take a series like a file.
    @Test func maskEvaluateAndReformatTakeSeries() throws {
        let dir = try TestSupport.makeTemporaryDirectory("dicom-commands")
        defer { try? FileManager.default.removeItem(at: dir) }
        let series = Self.series.appendingPathComponent("axial_evaluate").path
        let mask = try TestSupport.runMR2CT(["mask", series, dir.appendingPathComponent("m.nii.gz").path])
        #expect(mask.status == 0, "\(mask.stderr)")
        let m = try NIfTIFile.read(dir.appendingPathComponent("m.nii.gz"))
        let v = try DICOMFolder.series(at: DICOMSeriesLocation(folder: URL(fileURLWithPath: series))).readVolume()
        #expect(m.grid == v.grid && m.affine == v.affine)
        let evaluate = try TestSupport.runMR2CT(["evaluate", "--pred", series, "--ref", series, "--mask", dir.appendingPathComponent("m.nii.gz").path])
        #expect(evaluate.status == 0, "\(evaluate.stderr)")
        let line = try #require(Self.lines(evaluate.stdout).first)
        #expect(line["mae"] as? Double == 0, "\(evaluate.stdout)")
    }
}
