import Foundation
import NIfTI
import Testing
import TestSupport
@testable import Phantom

/// nibabel's reading of a phantom written by `mr2ct phantom` (Fixtures/phantom/make_expected.py): the oblique LPS
/// affine, both header forms, the datatype and the voxel values as an independent reader sees them.
@Test func nibabelReadsThePhantomAsGenerated() throws {
    let url = TestSupport.fixturesDirectory.appendingPathComponent("phantom/expected.json")
    let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    var configuration = PhantomConfiguration()
    configuration.gridSize = [24, 28, 16]
    configuration.spacing = [6.5, 7, 9.5]
    let generator = PhantomGenerator(configuration: configuration, seed: 3)
    let dir = try TestSupport.makeTemporaryDirectory("phantom-nibabel")
    defer { try? FileManager.default.removeItem(at: dir) }
    _ = try PhantomDataset.write(generator, indices: [7], to: dir, outputs: [.mr, .ct])
    let subject = generator.subject(7)

    for (modality, volume) in [("mr", subject.mr), ("ct", subject.ct)] {
        let expected = try #require(json[modality] as? [String: Any])
        #expect(expected["shape"] as? [Int] == [24, 28, 16])
        #expect(expected["datatype"] as? String == "int16")
        #expect(expected["axcodes"] as? String == "LPS")
        #expect(expected["sform_code"] as? Int == 2 && expected["qform_code"] as? Int == 1)
        let pixdim = try #require(expected["pixdim"] as? [Double])
        #expect(zip(pixdim, [6.5, 7, 9.5]).allSatisfy { abs($0 - $1) < 1e-5 })
        // The affine we meant equals what nibabel decodes from sform (float32) and from the qform quaternion.
        for key in ["sform", "qform"] {
            let rows = try #require(expected[key] as? [[Double]])
            for r in 0..<3 { for c in 0..<4 {
                #expect(abs(rows[r][c] - volume.affine[r, c]) < 1e-4, "\(modality) \(key)[\(r)][\(c)]")
            } }
        }
        // Voxel values: the writer rounds half away from zero to INT16. The sum allows a handful of ±1 flips
        // from last-bit differences of another C library's sin/exp.
        let written = try NIfTIFile.read(dir.appendingPathComponent("\(modality)/sub-007.nii.gz"))
        let sum = written.voxels.reduce(0) { $0 + Int($1) }
        let expectedSum = try #require(expected["sum"] as? Int)
        #expect(abs(sum - expectedSum) <= 20, "\(modality) sum \(sum) vs nibabel \(expectedSum)")
        #expect(abs(Int(volume.voxels.map { $0.rounded(.toNearestOrAwayFromZero) }.reduce(0, +)) - expectedSum) <= 20)
        #expect(abs(Int(written[12, 14, 6]) - (expected["voxel_12_14_6"] as? Int ?? .min)) <= 1)
        #expect(abs(Int(written.voxels.min()!) - (expected["min"] as? Int ?? .min)) <= 1)
        #expect(abs(Int(written.voxels.max()!) - (expected["max"] as? Int ?? .min)) <= 1)
    }
}
