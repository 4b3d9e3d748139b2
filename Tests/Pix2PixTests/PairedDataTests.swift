import SyntheticCT
import Networks
import Foundation
import NIfTI
import Testing
import Training
@testable import Pix2Pix

@Suite struct PairedDataTests {
    @Test func pairsAreMatchedByNameAsEvaluateMatches() throws {
        let mr = ["a.nii.gz", "b_mr.nii.gz"].map { URL(fileURLWithPath: "/d/mr/" + $0) }
        let ct = ["b.nii.gz", "a.nii.gz"].map { URL(fileURLWithPath: "/d/ct/" + $0) }
        let pairs = try PairedSliceDataset.match(mrFiles: mr, ctFiles: ct)
        #expect(pairs.map(\.ct.lastPathComponent) == ["a.nii.gz", "b.nii.gz"])
        #expect(throws: RunError.self) {
            try PairedSliceDataset.match(mrFiles: mr, ctFiles: ct + [URL(fileURLWithPath: "/d/ct/c.nii.gz")])
        }
        #expect(throws: RunError.self) { try PairedSliceDataset.match(mrFiles: mr + [URL(fileURLWithPath: "/d/mr/z.nii")], ctFiles: ct) }
    }
}
