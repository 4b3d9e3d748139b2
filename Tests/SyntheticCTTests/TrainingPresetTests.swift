import Foundation
import MR2CTSupport
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

    /// Issue 19: a DICOM training folder is sized from its series' headers, exactly as the NIfTI folder of the same
    /// volumes (dcm2niix's conversions of the same fixture series, made independently by make_dicom_fixtures.py).
    @Test func dicomFolderGetsTheSamePresetAsTheNIfTIFolderOfTheSameVolumes() throws {
        let root = try TestSupport.makeTemporaryDirectory("preset-dicom")
        defer { try? FileManager.default.removeItem(at: root) }
        let fixtures = TestSupport.fixturesDirectory.appendingPathComponent("dicom")
        let dicom = root.appendingPathComponent("mr-dicom"), nifti = root.appendingPathComponent("mr-nifti")
        for folder in [dicom, nifti] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        // Axial, sagittal, coronal (deflated) and oblique (big endian) series; 16 × 12 pixels of 1.25 × 1.5 mm.
        let names = ["axial_implicit_le", "sagittal_explicit_le_signed", "coronal_deflated", "oblique_big_endian", "axial_evaluate"]
        for name in names {
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent("series/\(name)"), to: dicom.appendingPathComponent(name))
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent("references/\(name).nii"),
                                             to: nifti.appendingPathComponent("\(name).nii"))
        }
        let dicomFiles = try TrainingSession.volumeFiles(in: dicom, what: "MR")
        let niftiFiles = try TrainingSession.volumeFiles(in: nifti, what: "MR")
        #expect(dicomFiles.count == names.count && niftiFiles.count == names.count)
        #expect(dicomFiles.allSatisfy { FileKind.of($0.path) == .directory }, "the DICOM folder's entries are its series")

        let fromDICOM = try TrainingPreset.sct.configuration(mrFiles: dicomFiles)
        let fromNIfTI = try TrainingPreset.sct.configuration(mrFiles: niftiFiles)
        #expect(fromDICOM == fromNIfTI)
        // Hand-computed from the series' geometry: axial in-plane (canonical x, y) spacings {1.25, 1.5} (the two
        // axial series and the oblique one, whose axes are nearest x, y, z), {2.0, 1.25} (sagittal: x is its slice
        // axis), {1.25, 1.8} (coronal: y is its slice axis); sorted, the upper middle of the ten is 1.5 mm, in range.
        // The largest field of view, axial_evaluate's 24 × 1.25 = 20 × 1.5 = 30 mm, is 20 px, below the 96 floor.
        #expect(fromDICOM.preprocessing.targetSpacing == 1.5)
        #expect(fromDICOM.preprocessing.sliceSize == 96)
        // The floor and the clamp hide small differences; with a wide range (the median itself) and a fine one (the
        // field of view decides the slice size: 30 mm / 0.2 mm = 150 → 152 px) the two folders still agree.
        let wide = try TrainingPreset.axialField(of: dicomFiles, spacingRange: 0.01...100)
        let wideNIfTI = try TrainingPreset.axialField(of: niftiFiles, spacingRange: 0.01...100)
        #expect(abs(wide.spacing - wideNIfTI.spacing) < 1e-5 && abs(wide.spacing - 1.5) < 1e-5)
        let fine = try TrainingPreset.axialField(of: dicomFiles, spacingRange: 0.2...0.2)
        let fineNIfTI = try TrainingPreset.axialField(of: niftiFiles, spacingRange: 0.2...0.2)
        #expect(fine.sliceSize == fineNIfTI.sliceSize)
        #expect(fine.sliceSize == 152)
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
