import Foundation
import NIfTI
import Testing
import TestSupport

@Suite struct MaskCLITests {
    struct Line: Decodable { var input: String; var output: String; var threshold: Double; var voxels: Int; var fraction: Double; var volume_ml: Double }

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
        // The CT threshold lies between air and soft tissue.
        #expect(line.threshold > -900 && line.threshold < -100)
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
