import Foundation
import NIfTI
import Preprocessing
import Testing
@testable import CycleGAN
@testable import SyntheticCT
import TestSupport

/// `--preset` configurations: what `sct` derives from the MR folder's headers, checked against hand-computed values.
@Suite("Training presets")
struct TrainingPresetTests {
    static func writeMR(_ url: URL, grid: GridSize, spacing: SIMD3<Double>) throws {
        let voxels = [Float](repeating: 100, count: grid.count)
        try NIfTIFile.write(Volume(grid: grid, voxels: voxels, affine: .scaling(spacing)), to: url)
    }

    @Test func sctTakesSpacingAndSliceSizeFromTheData() throws {
        let root = try TestSupport.makeTemporaryDirectory("preset")
        defer { try? FileManager.default.removeItem(at: root) }
        // 1 mm in plane, 200 × 160 mm: spacing clamped up to 1.5 mm, 200 / 1.5 = 133.3 → 134 → 136 px.
        let a = root.appendingPathComponent("a.nii.gz")
        try Self.writeMR(a, grid: GridSize(200, 160, 4), spacing: SIMD3(1, 1, 3))
        let c = try TrainingPreset.sct.configuration(mrFiles: [a])
        #expect(c.preset == .sct)
        #expect(c.preprocessing.targetSpacing == 1.5)
        #expect(c.preprocessing.sliceSize == 136)
        #expect(c.cropSize == 96)
        #expect(c.preprocessing.ctMapping == .softTissue)
        #expect(c.model.lambdaIdentity == 0.5 && c.model.lambdaStructure == 0)
        #expect(c.model.generator.ngf == 16 && c.model.discriminator.ndf == 32 && c.model.generator.residualBlocks == 6)
        #expect(c.augment && c.length == .iterations(4000))
        #expect(throws: Never.self) { try c.preprocessing.validate() }

        // Median of the in-plane spacings {2, 2, 2.5, 2.5, 4, 4}: the upper middle one, 2.5 mm.
        let b = root.appendingPathComponent("b.nii.gz"), d = root.appendingPathComponent("d.nii.gz")
        let e = root.appendingPathComponent("e.nii.gz")
        try Self.writeMR(b, grid: GridSize(50, 50, 4), spacing: SIMD3(2, 2, 4))
        try Self.writeMR(d, grid: GridSize(60, 40, 4), spacing: SIMD3(4, 4, 4))
        try Self.writeMR(e, grid: GridSize(80, 80, 4), spacing: SIMD3(2.5, 2.5, 4))
        let m = try TrainingPreset.sct.configuration(mrFiles: [b, d, e])
        #expect(m.preprocessing.targetSpacing == 2.5)
        #expect(m.preprocessing.sliceSize == 96)  // max(80·2.5, 60·4) = 240 mm / 2.5 = 96

        // Coarse data: 5 mm in plane is clamped down to 3 mm; 100 × 5 = 500 mm / 3 = 166.7 → 168.
        let f = root.appendingPathComponent("f.nii.gz")
        try Self.writeMR(f, grid: GridSize(100, 30, 4), spacing: SIMD3(5, 5, 5))
        let coarse = try TrainingPreset.sct.configuration(mrFiles: [f])
        #expect(coarse.preprocessing.targetSpacing == 3)
        #expect(coarse.preprocessing.sliceSize == 168)
    }

    @Test func referenceIsTheDefaultConfigurationWithItsName() throws {
        var expected = TrainingConfiguration()
        expected.preset = .reference
        expected.synchroniseChannels()
        #expect(try TrainingPreset.reference.configuration(mrFiles: []) == expected)
    }

    @Test func unreadableMRFolderIsOneClearError() throws {
        let root = try TestSupport.makeTemporaryDirectory("preset-bad")
        defer { try? FileManager.default.removeItem(at: root) }
        let junk = root.appendingPathComponent("junk.nii")
        try Data("not a nifti".utf8).write(to: junk)
        #expect {
            _ = try TrainingPreset.sct.configuration(mrFiles: [junk])
        } throws: { error in
            "\(error)".contains("--preset sct: no MR volume header could be read")
        }
    }

    @Test func runsWithoutAPresetDecodeAndEncodeAsBefore() throws {
        let json = String(decoding: try TrainingConfiguration().jsonData(), as: UTF8.self)
        #expect(!json.contains("preset"))
    }
}
