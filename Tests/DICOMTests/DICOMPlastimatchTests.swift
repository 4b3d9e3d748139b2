@testable import DICOM
import Foundation
import NIfTI
import Testing
import TestSupport

/// Series written by plastimatch 1.9.4 (an independent NIfTI → DICOM writer: ITK's NIfTI reader, its own LPS
/// conversion and int16 quantisation) from two NIfTI fixtures (Tests/TestSupport/Fixtures/dicom/make_plastimatch_fixtures.sh):
/// read by our reader, each lands on the NIfTI's world grid (every voxel within 1e-3 mm of a NIfTI voxel centre, the
/// corners too) with the NIfTI's values: exactly for the int16 volume; for the float32 oblique one as plastimatch
/// rounds it (int16 with RescaleSlope 0.030612, written to 6 decimals): within one slope step, and with the same
/// worst difference pydicom + nibabel measured on the same files (plastimatch.json).
@Suite struct DICOMPlastimatchTests {
    static let root = TestSupport.fixturesDirectory.appendingPathComponent("dicom/plastimatch")

    @Test(arguments: [("oblique", "orient_oblique.nii.gz"), ("int16", "dtype_int16.nii")])
    func plastimatchSeriesEqualsItsNIfTI(_ name: String, _ source: String) throws {
        let series = try DICOMFolder.series(at: DICOMSeriesLocation(folder: Self.root.appendingPathComponent(name)))
        let ours = try series.readVolume()
        let nifti = try NIfTIFile.read(TestSupport.fixturesDirectory.appendingPathComponent("nifti/\(source)"))
        #expect(ours.grid.count == nifti.grid.count && ours.grid.nz == 7)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.root.appendingPathComponent("plastimatch.json"))) as! [String: Any]
        let measured = try #require((json[name] as? [String: Any])?["worstVoxelDifference"] as? Double)
        let slope = series.slices[0].rescaleSlope
        let inverse = try #require(nifti.affine.inverse)
        var worstMillimetres = 0.0, worstValue = 0.0, outside = 0
        for k in 0..<ours.grid.nz {
            for j in 0..<ours.grid.ny {
                for i in 0..<ours.grid.nx {
                    let world = ours.affine.apply(SIMD3(Double(i), Double(j), Double(k)))
                    let r = inverse.apply(world)
                    let (a, b, c) = (Int(r.x.rounded()), Int(r.y.rounded()), Int(r.z.rounded()))
                    guard (0..<nifti.grid.nx).contains(a), (0..<nifti.grid.ny).contains(b), (0..<nifti.grid.nz).contains(c) else {
                        outside += 1
                        continue
                    }
                    let d = world - nifti.affine.apply(SIMD3(Double(a), Double(b), Double(c)))
                    worstMillimetres = max(worstMillimetres, (d * d).sum().squareRoot())
                    worstValue = max(worstValue, Double(abs(ours[i, j, k] - nifti[a, b, c])))
                }
            }
        }
        #expect(outside == 0)
        #expect(worstMillimetres < 1e-3, "\(name): \(worstMillimetres) mm")
        if name == "int16" {
            #expect(slope == 1 && worstValue == 0, "\(name): int16 voxels are exact, worst \(worstValue)")
        } else {
            #expect(slope == 0.030612)
            #expect(worstValue <= slope, "\(name): worst \(worstValue) above one step \(slope)")
            #expect(abs(worstValue - measured) < 1e-4, "\(name): worst \(worstValue), pydicom + nibabel measured \(measured)")
        }
    }
}
