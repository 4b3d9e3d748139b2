import SyntheticCT
import Foundation
import Testing
import TestSupport

/// `train --mr/--ct` folders may hold DICOM series (issue 19): series subfolders are listed beside NIfTI files, and a
/// refused series stops training with its reason instead of training on a silently shortened list.
@Suite struct DICOMTrainingFolderTests {
    static let series = TestSupport.fixturesDirectory.appendingPathComponent("dicom/series")

    @Test func seriesSubfoldersAreTrainingVolumes() throws {
        let dir = try TestSupport.makeTemporaryDirectory("dicom-train")
        defer { try? FileManager.default.removeItem(at: dir) }
        let mr = dir.appendingPathComponent("mr")
        try FileManager.default.createDirectory(at: mr, withIntermediateDirectories: true)
        for name in ["axial_rle", "oblique_jpegls"] {
            try FileManager.default.copyItem(at: Self.series.appendingPathComponent(name), to: mr.appendingPathComponent(name))
        }
        try FileManager.default.copyItem(at: TestSupport.fixturesDirectory.appendingPathComponent("conversion/mr_lps_int16.nii.gz"),
                                         to: mr.appendingPathComponent("mr_lps_int16.nii.gz"))
        let files = try TrainingSession.volumeFiles(in: mr, what: "MR")
        #expect(files.map(\.lastPathComponent) == ["axial_rle", "mr_lps_int16.nii.gz", "oblique_jpegls"])

        try FileManager.default.copyItem(at: Self.series.appendingPathComponent("missing_slice"), to: mr.appendingPathComponent("missing_slice"))
        #expect {
            _ = try TrainingSession.volumeFiles(in: mr, what: "MR")
        } throws: { error in
            "\(error)".hasPrefix(mr.appendingPathComponent("missing_slice").path + ": in the MR folder: missing slice(s)")
        }
    }
}
