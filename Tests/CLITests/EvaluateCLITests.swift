import Foundation
import Testing
import NIfTI
import TestSupport

/// `mr2ct evaluate` on files written here: metrics against hand-computed values and scikit-image, matching by name,
/// JSON lines, CSV and exit codes.
struct EvaluateCLITests {
    static func write(_ values: [Float], _ grid: GridSize, to url: URL) throws {
        try NIfTIFile.write(Volume(grid: grid, voxels: values, affine: .scaling(SIMD3(1.5, 1.5, 2))), to: url)
    }

    static func lines(_ stdout: String) throws -> [[String: Any]] {
        try stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
    }

    @Test func constantImagesGiveTheHandComputedMetrics() throws {
        let root = try TestSupport.makeTemporaryDirectory("evaluate-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        // 7×7×7: CT 0 HU, sCT 100 HU, mask everything. MAE = ME = 100; PSNR = 10·log10(4024² / 100²);
        // SSIM (one interior voxel, zero variance) = (2·1024·1124 + C1) / (1024² + 1124² + C1), C1 = (0.01·4024)².
        let grid = GridSize(7, 7, 7)
        let ct = root.appendingPathComponent("ct.nii.gz"), sct = root.appendingPathComponent("sct.nii.gz")
        let mask = root.appendingPathComponent("mask.nii.gz")
        try Self.write([Float](repeating: 0, count: grid.count), grid, to: ct)
        try Self.write([Float](repeating: 100, count: grid.count), grid, to: sct)
        try Self.write([Float](repeating: 1, count: grid.count), grid, to: mask)
        let csv = root.appendingPathComponent("metrics.csv")
        let r = try TestSupport.runMR2CT(["evaluate", "--pred", sct.path, "--ref", ct.path, "--mask", mask.path, "--csv", csv.path])
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try Self.lines(r.stdout)
        #expect(objects.count == 2)
        let v = objects[0]
        #expect(v["kind"] as? String == "volume" && v["status"] as? String == "ok")
        #expect(abs((v["mae"] as? Double ?? 0) - 100) < 1e-9)
        #expect(abs((v["me"] as? Double ?? 0) - 100) < 1e-9)
        #expect(abs((v["psnr"] as? Double ?? 0) - 20 * log10(40.24)) < 1e-5)
        let c1 = 40.24 * 40.24
        #expect(abs((v["ssim"] as? Double ?? 0) - (2 * 1024 * 1124 + c1) / (1024 * 1024 + 1124 * 1124 + c1)) < 1e-8)
        #expect(v["voxels"] as? Int == 343)
        let s = objects[1]
        #expect(s["kind"] as? String == "summary" && s["volumes"] as? Int == 1 && s["failed"] as? Int == 0)
        #expect(abs((s["mae_mean"] as? Double ?? 0) - 100) < 1e-9)
        #expect(s["mae_sd"] is NSNull)
        let table = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        #expect(table.count == 4)
        #expect(table[0] == "row,prediction,reference,mask,mae,me,psnr,ssim,voxels,status,error")
        #expect(table[1].hasPrefix("volume,\(sct.path),\(ct.path),\(mask.path),100,100,32.093"))
        #expect(table[2].hasPrefix("mean,,,,100,100,32.093"))
    }

    @Test func foldersAreMatchedByNameAndSummarised() throws {
        let root = try TestSupport.makeTemporaryDirectory("evaluate-cli-folders")
        defer { try? FileManager.default.removeItem(at: root) }
        let preds = root.appendingPathComponent("sct"), refs = root.appendingPathComponent("ct"), masks = root.appendingPathComponent("masks")
        for folder in [preds, refs, masks] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        let grid = GridSize(8, 8, 8)
        let all = [Float](repeating: 1, count: grid.count)
        // x: sCT off by +50 HU everywhere; x_1: off by −10; y: no reference.
        try Self.write([Float](repeating: 40, count: grid.count), grid, to: refs.appendingPathComponent("x.nii.gz"))
        try Self.write([Float](repeating: 90, count: grid.count), grid, to: preds.appendingPathComponent("x_sct.nii.gz"))
        try Self.write([Float](repeating: 40, count: grid.count), grid, to: refs.appendingPathComponent("x_1.nii.gz"))
        try Self.write([Float](repeating: 30, count: grid.count), grid, to: preds.appendingPathComponent("x_1_sct.nii.gz"))
        try Self.write([Float](repeating: 30, count: grid.count), grid, to: preds.appendingPathComponent("y_sct.nii.gz"))
        try Self.write(all, grid, to: masks.appendingPathComponent("x_mask.nii.gz"))
        try Self.write(all, grid, to: masks.appendingPathComponent("x_1_mask.nii.gz"))
        let csv = root.appendingPathComponent("out.csv")
        let r = try TestSupport.runMR2CT(["evaluate", "--pred", preds.path, "--ref", refs.path, "--mask", masks.path, "--csv", csv.path])
        #expect(r.status == 1)
        let objects = try Self.lines(r.stdout)
        #expect(objects.count == 4)
        #expect(objects[0]["reference"] as? String == refs.appendingPathComponent("x_1.nii.gz").path)
        #expect(objects[0]["mask"] as? String == masks.appendingPathComponent("x_1_mask.nii.gz").path)
        #expect(objects[0]["me"] as? Double == -10)
        #expect(objects[1]["reference"] as? String == refs.appendingPathComponent("x.nii.gz").path)
        #expect(objects[1]["me"] as? Double == 50)
        #expect(objects[2]["status"] as? String == "error" && objects[2]["reference"] is NSNull)
        let summary = objects[3]
        #expect(summary["volumes"] as? Int == 2 && summary["failed"] as? Int == 1)
        #expect(abs((summary["me_mean"] as? Double ?? 0) - 20) < 1e-9)
        #expect(abs((summary["me_sd"] as? Double ?? 0) - 60 / 2.0.squareRoot()) < 1e-6)   // sample sd of −10, 50
        #expect(r.stderr.contains("y_sct.nii.gz"))
        #expect(try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").count == 6)
    }

    @Test func labelMapsGiveHandComputedErrorsPerTissueNamedByTheFoldersTable() throws {
        let root = try TestSupport.makeTemporaryDirectory("evaluate-cli-labels")
        defer { try? FileManager.default.removeItem(at: root) }
        let preds = root.appendingPathComponent("sct"), refs = root.appendingPathComponent("ct"), labels = root.appendingPathComponent("labels")
        for folder in [preds, refs, labels] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        let grid = GridSize(8, 8, 8), half = grid.count / 2
        let all = root.appendingPathComponent("mask.nii.gz")
        try Self.write([Float](repeating: 1, count: grid.count), grid, to: all)
        // Subject a: label 4 (first half) off by −300 HU, label 8 off by +20. Subject b: all label 8, off by −40.
        try Self.write([Float](repeating: 0, count: grid.count), grid, to: refs.appendingPathComponent("a.nii.gz"))
        try Self.write((0..<grid.count).map { $0 < half ? -300 : 20 }, grid, to: preds.appendingPathComponent("a_sct.nii.gz"))
        try Self.write((0..<grid.count).map { $0 < half ? 4 : 8 }, grid, to: labels.appendingPathComponent("a.nii.gz"))
        try Self.write([Float](repeating: 0, count: grid.count), grid, to: refs.appendingPathComponent("b.nii.gz"))
        try Self.write([Float](repeating: -40, count: grid.count), grid, to: preds.appendingPathComponent("b_sct.nii.gz"))
        try Self.write([Float](repeating: 8, count: grid.count), grid, to: labels.appendingPathComponent("b.nii.gz"))
        try "index\tname\n4\tcortical bone\n8\twhite matter\n".write(to: labels.appendingPathComponent("dseg.tsv"), atomically: true, encoding: .utf8)
        let csv = root.appendingPathComponent("labels.csv")
        let r = try TestSupport.runMR2CT(["evaluate", "--pred", preds.path, "--ref", refs.path, "--mask", all.path,
                                          "--labels", labels.path, "--csv", csv.path])
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try Self.lines(r.stdout)
        try #require(objects.count == 3)
        let a = try #require(objects[0]["labels"] as? [[String: Any]])
        #expect(a.map { $0["label"] as? Int } == [4, 8])
        #expect(a.map { $0["name"] as? String } == ["cortical bone", "white matter"])
        #expect(a.map { $0["voxels"] as? Int } == [256, 256])
        #expect(a.map { $0["mae"] as? Double } == [300, 20] && a.map { $0["me"] as? Double } == [-300, 20])
        // Pooled: label 4 has 256 voxels at 300; label 8 has 256 at 20 and 512 at 40 → MAE 100/3, ME −20.
        let pooled = try #require(objects[2]["labels"] as? [[String: Any]])
        #expect(pooled.map { $0["voxels"] as? Int } == [256, 768])
        #expect(abs((pooled[1]["mae"] as? Double ?? 0) - 100.0 / 3) < 1e-5 && pooled[1]["me"] as? Double == -20)
        #expect(pooled.map { $0["share"] as? Double } == [0.25, 0.75])
        // Contributions add up to the MAE over all 1024 voxels: (256·300 + 256·20 + 512·40) / 1024 = 100.
        #expect(pooled.map { $0["mae_contribution"] as? Double } == [75, 25])
        let table = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        #expect(table[0].hasSuffix(",error,mae_cortical bone,mae_white matter"))
        #expect(table[1].hasSuffix(",300,20") && table[2].hasSuffix(",,40"))
        #expect(table[3].hasPrefix("mean,") && table[3].hasSuffix(",300,33.333333"))

        // No labels: no "labels" key. A label map on another grid, or a non-integer one: that volume fails, named.
        let plain = try TestSupport.runMR2CT(["evaluate", "--pred", preds.path, "--ref", refs.path])
        #expect(try Self.lines(plain.stdout).allSatisfy { $0["labels"] == nil })
        try Self.write([Float](repeating: 8, count: 8), GridSize(2, 2, 2), to: labels.appendingPathComponent("b.nii.gz"))
        try Self.write((0..<grid.count).map { $0 == 5 ? 8.5 : 8 }, grid, to: labels.appendingPathComponent("a.nii.gz"))
        let bad = try TestSupport.runMR2CT(["evaluate", "--pred", preds.path, "--ref", refs.path, "--mask", all.path, "--labels", labels.path])
        #expect(bad.status == 1)
        let errors = try Self.lines(bad.stdout).compactMap { $0["error"] as? String }
        #expect(errors.count == 2)
        #expect(errors.contains { $0.contains("a.nii.gz") && $0.contains("label 8.5") })
        #expect(errors.contains { $0.contains("b.nii.gz") && $0.contains("not on the grid") })
        #expect(bad.stderr.split(separator: "\n").count == 2)
        // A broken names table is one clear error before any volume; --label-names needs --labels.
        try "0\tair\n".write(to: labels.appendingPathComponent("dseg.tsv"), atomically: true, encoding: .utf8)
        let table2 = try TestSupport.runMR2CT(["evaluate", "--pred", preds.path, "--ref", refs.path, "--labels", labels.path])
        #expect(table2.status == 1 && table2.stdout.isEmpty)
        #expect(table2.stderr.contains("dseg.tsv: not a label table"))
        #expect(try TestSupport.runMR2CT(["evaluate", "--pred", preds.path, "--ref", refs.path, "--label-names", "x.tsv"]).status == 64)
        let missing = try TestSupport.runMR2CT(["evaluate", "--pred", preds.path, "--ref", refs.path, "--labels", labels.path,
                                                "--label-names", root.appendingPathComponent("absent.tsv").path])
        #expect(missing.status == 1 && missing.stderr.contains("absent.tsv: no such file"))
    }

    @Test func theSynthRADFixtureThroughTheCommandMatchesScikitImage() throws {
        let root = try TestSupport.makeTemporaryDirectory("evaluate-cli-fixture")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = TestSupport.fixturesDirectory.appendingPathComponent("evaluation")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("expected.json"))) as? [String: Any])
        let expected = try #require((json["cases"] as? [String: Any])?["body"] as? [String: Any])
        let grid = GridSize(expected["nx"] as! Int, expected["ny"] as! Int, expected["nz"] as! Int)
        func floats(_ name: String) throws -> [Float] {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            return data.withUnsafeBytes { raw in (0..<grid.count).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
        }
        let mask = try Data(contentsOf: folder.appendingPathComponent("body_mask.u8")).map(Float.init)
        try Self.write(try floats("body_ref.f32"), grid, to: root.appendingPathComponent("ref.nii"))
        try Self.write(try floats("body_pred.f32"), grid, to: root.appendingPathComponent("pred.nii"))
        try Self.write(mask, grid, to: root.appendingPathComponent("mask.nii"))
        let r = try TestSupport.runMR2CT(["evaluate", "--pred", root.appendingPathComponent("pred.nii").path,
                                          "--ref", root.appendingPathComponent("ref.nii").path,
                                          "--mask", root.appendingPathComponent("mask.nii").path])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try Self.lines(r.stdout)[0]
        for key in ["mae", "me", "psnr"] {
            #expect(abs((v[key] as? Double ?? 0) - (expected[key] as! Double)) < 1e-5, "\(key)")
        }
        #expect(abs((v["ssim"] as? Double ?? 0) - (expected["ssim_uniform7"] as! Double)) < 1e-7)
    }

    @Test func withoutAMaskTheReferenceBodyIsUsedAndBadInputsFail() throws {
        let ct = TestSupport.packageRoot.appendingPathComponent("SampleData/real/example_ct_sm_3mm.nii.gz").path
        let r = try TestSupport.runMR2CT(["evaluate", "--pred", ct, "--ref", ct])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try Self.lines(r.stdout)[0]
        #expect(v["mae"] as? Double == 0 && v["psnr"] is NSNull && v["mask"] is NSNull)
        #expect(abs((v["ssim"] as? Double ?? 0) - 1) < 1e-12)
        #expect((v["voxels"] as? Int ?? 0) > 10000)

        let other = TestSupport.packageRoot.appendingPathComponent("SampleData/real/someones_anatomy.nii.gz").path
        let mismatch = try TestSupport.runMR2CT(["evaluate", "--pred", other, "--ref", ct])
        #expect(mismatch.status == 1)
        #expect(try Self.lines(mismatch.stdout)[0]["error"] as? String != nil)
        let missing = try TestSupport.runMR2CT(["evaluate", "--pred", "/nonexistent/x.nii", "--ref", ct])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("mr2ct: /nonexistent/x.nii: "))
    }
}
