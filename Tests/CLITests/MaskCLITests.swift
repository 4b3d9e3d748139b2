import Foundation
import NIfTI
import Testing
import TestSupport

@Suite struct MaskCLITests {
    struct Line: Decodable { var input: String; var output: String; var modality: String; var threshold: Double; var voxels: Int; var fraction: Double; var volume_ml: Double }

    /// `mr2ct mask` on the real CT writes the scipy-reference mask on the CT's grid and one JSON line.
    @Test func realCTMaskMatchesReference() throws {
        let directory = try TestSupport.makeTemporaryDirectory("mask-cli")
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = TestSupport.packageRoot.appendingPathComponent("SampleData/real/example_ct_sm_3mm.nii.gz")
        let output = directory.appendingPathComponent("mask.nii.gz")
        let result = try TestSupport.runMR2CT(["mask", input.path, output.path])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try JSONDecoder().decode(Line.self, from: Data(result.stdout.utf8))
        let source = try NIfTIFile.read(input)
        let mask = try NIfTIFile.read(output)
        let reference = try NIfTIFile.read(TestSupport.fixturesDirectory.appendingPathComponent("preprocessing/example_ct_sm_3mm_mask.nii.gz"))
        #expect(mask.grid == source.grid && mask.affine == source.affine)
        #expect(mask.voxels == reference.voxels)
        let count = mask.voxels.filter { $0 == 1 }.count
        #expect(line.voxels == count && abs(line.fraction - Double(count) / Double(mask.voxels.count)) < 1e-12)
        #expect(abs(line.volume_ml - Double(count) * 27 / 1000) < 1e-6)
        // The CT threshold, halfway between air and water.
        #expect(line.modality == "ct" && line.threshold == -500)
    }

    /// `--modality mr` thresholds the CT at half its Otsu level instead (no couch removal: the table stays in),
    /// `--margin 0` drops the final dilation; a bad margin is a usage error.
    @Test func modalityAndMarginOptions() throws {
        let directory = try TestSupport.makeTemporaryDirectory("mask-cli")
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = TestSupport.packageRoot.appendingPathComponent("SampleData/real/example_ct_sm_3mm.nii.gz")
        let asMR = directory.appendingPathComponent("mr.nii.gz"), thin = directory.appendingPathComponent("thin.nii.gz")
        let mr = try TestSupport.runMR2CT(["mask", "--modality", "mr", input.path, asMR.path])
        #expect(mr.status == 0, "\(mr.stderr)")
        let mrLine = try JSONDecoder().decode(Line.self, from: Data(mr.stdout.utf8))
        #expect(mrLine.modality == "mr" && mrLine.threshold > -1100 && mrLine.threshold < 0)
        let noMargin = try TestSupport.runMR2CT(["mask", "--margin", "0", input.path, thin.path])
        #expect(noMargin.status == 0, "\(noMargin.stderr)")
        let reference = try NIfTIFile.read(TestSupport.fixturesDirectory.appendingPathComponent("preprocessing/example_ct_sm_3mm_mask.nii.gz"))
        let thinMask = try NIfTIFile.read(thin)
        // At 3 mm voxels a 2 mm margin is no dilation at all: the same mask.
        #expect(thinMask.voxels == reference.voxels)
        let bad = try TestSupport.runMR2CT(["mask", "--margin", "-1", input.path, directory.appendingPathComponent("x.nii.gz").path])
        #expect(bad.status == 64)
    }

    @Test func badInputAndUsage() throws {
        let directory = try TestSupport.makeTemporaryDirectory("mask-cli")
        defer { try? FileManager.default.removeItem(at: directory) }
        let broken = directory.appendingPathComponent("broken.nii")
        try Data("nope".utf8).write(to: broken)
        let output = directory.appendingPathComponent("mask.nii.gz")
        let bad = try TestSupport.runMR2CT(["mask", broken.path, output.path])
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("mr2ct: \(broken.path): ") && bad.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: output.path))
        let usage = try TestSupport.runMR2CT(["mask", broken.path, directory.appendingPathComponent("mask.png").path])
        #expect(usage.status == 64)
    }
}
