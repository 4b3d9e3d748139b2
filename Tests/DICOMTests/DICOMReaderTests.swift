@testable import DICOM
import Foundation
import NIfTI
import Testing
import TestSupport

/// The DCMTK-based series reader against dcm2niix: Tests/TestSupport/Fixtures/dicom/make_dicom_fixtures.py writes
/// the series with pydicom (and dcmcjpeg for JPEG lossless), converts each with dcm2niix and checks with nibabel that
/// dcm2niix's voxels are the values written; here every voxel we read must land, through our affine, on a voxel of
/// dcm2niix's grid (index integral within 1e-3) holding exactly our value, and the two grids' corners agree to 1e-4 mm.
@Suite struct DICOMReaderTests {
    static let root = TestSupport.fixturesDirectory.appendingPathComponent("dicom")
    static let series = root.appendingPathComponent("series")
    static let references = root.appendingPathComponent("references")

    /// name in references.json → (series location, transfer syntax UID it tests).
    static let good: [(String, String)] = [
        ("axial_implicit_le", "1.2.840.10008.1.2"),
        ("axial_descending_ras_rows", "1.2.840.10008.1.2.1"),
        ("sagittal_explicit_le_signed", "1.2.840.10008.1.2.1"),
        ("oblique_big_endian", "1.2.840.10008.1.2.2"),
        ("coronal_deflated", "1.2.840.10008.1.2.1.99"),
        ("axial_rescaled", "1.2.840.10008.1.2.1"),
        ("axial_rle", "1.2.840.10008.1.2.5"),
        ("oblique_jpegls", "1.2.840.10008.1.2.4.80"),
        ("axial_jpeg_lossless", "1.2.840.10008.1.2.4.70"),
        ("two_series#1.2.826.0.1.3680043.10.1019.3.10", "1.2.840.10008.1.2.1"),
        ("two_series#1.2.826.0.1.3680043.10.1019.3.11", "1.2.840.10008.1.2.1"),
        ("axial_evaluate", "1.2.840.10008.1.2.1"),
    ]

    @Test(arguments: good.map(\.0))
    func volumeEqualsDcm2niix(_ name: String) throws {
        let location = try #require(DICOMSeriesLocation(path: Self.series.appendingPathComponent(name).path))
        let series = try DICOMFolder.series(at: location)
        let ours = try series.readVolume()
        let reference = try NIfTIFile.read(Self.references.appendingPathComponent(name.replacingOccurrences(of: "#", with: "_") + ".nii"))
        #expect(ours.grid.count == reference.grid.count)
        let inverse = try #require(reference.affine.inverse)
        var worstIndex = 0.0, mismatches = 0
        for k in 0..<ours.grid.nz {
            for j in 0..<ours.grid.ny {
                for i in 0..<ours.grid.nx {
                    let world = ours.affine.apply(SIMD3(Double(i), Double(j), Double(k)))
                    let r = inverse.apply(world)
                    let ri = SIMD3(r.x.rounded(), r.y.rounded(), r.z.rounded())
                    worstIndex = max(worstIndex, abs(r.x - ri.x), abs(r.y - ri.y), abs(r.z - ri.z))
                    let (a, b, c) = (Int(ri.x), Int(ri.y), Int(ri.z))
                    guard (0..<reference.grid.nx).contains(a), (0..<reference.grid.ny).contains(b), (0..<reference.grid.nz).contains(c),
                          reference[a, b, c] == ours[i, j, k] else { mismatches += 1; continue }
                }
            }
        }
        #expect(worstIndex < 1e-3, "\(name): worst fractional index \(worstIndex)")
        #expect(mismatches == 0, "\(name): \(mismatches) voxels differ from dcm2niix")
        // The grids' eight corners in world space (1e-4 mm): the same box, whatever the axis order.
        func corners(_ v: Volume) -> [SIMD3<Double>] {
            var out: [SIMD3<Double>] = []
            for c in 0..<8 {
                let ijk = SIMD3(Double((c & 1) * (v.grid.nx - 1)), Double((c >> 1 & 1) * (v.grid.ny - 1)), Double((c >> 2 & 1) * (v.grid.nz - 1)))
                out.append(v.affine.apply(ijk))
            }
            return out.sorted { ($0.x, $0.y, $0.z) < ($1.x, $1.y, $1.z) }
        }
        for (p, q) in zip(corners(ours), corners(reference)) {
            let d = p - q
            #expect(max(abs(d.x), abs(d.y), abs(d.z)) < 1e-4, "\(name): corner \(p) vs dcm2niix \(q)")
        }
        #expect(series.transferSyntaxes.count == 1)
    }

    @Test func transferSyntaxesAreTheOnesNamed() throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.root.appendingPathComponent("references.json"))) as! [String: [String: Any]]
        for (name, syntax) in Self.good { #expect(json[name]?["transferSyntax"] as? String == syntax, "\(name)") }
    }

    /// Each hostile series: one reason, naming the series; the reason's case, not its wording, is checked.
    @Test func hostileSeriesAreRefusedWithTheirReason() throws {
        func reason(_ name: String) -> DICOMError.Reason? {
            let path = Self.series.appendingPathComponent(name).path
            do {
                let location = try #require(DICOMSeriesLocation(path: path))
                let s = try DICOMFolder.series(at: location)
                _ = try s.readVolume()
                return nil
            } catch let error as DICOMError {
                #expect(error.description.hasPrefix(path), "\(error)")
                #expect(!error.description.contains("\n"))
                return error.reason
            } catch { Issue.record("\(error)"); return nil }
        }
        if case .gantryTilt(let d) = reason("gantry_tilt") { #expect(d == 15) } else { Issue.record("gantry_tilt") }
        if case .gantryTilt(let d) = reason("sheared_no_tag") {
            #expect(abs(d - atan2(0.7, 2) * 180 / .pi) < 1e-3)
        } else { Issue.record("sheared_no_tag") }
        if case .missingSlices(let gap, let spacing, _) = reason("missing_slice") {
            #expect(abs(gap - 4) < 1e-9 && abs(spacing - 2) < 1e-9)
        } else { Issue.record("missing_slice") }
        if case .unevenSpacing(let lo, let hi) = reason("uneven_spacing") { #expect(lo == 2 && hi == 3) } else { Issue.record("uneven_spacing") }
        if case .mixedSizes = reason("mixed_sizes") {} else { Issue.record("mixed_sizes") }
        if case .duplicateSlices(5, 4) = reason("duplicate_slices") {} else { Issue.record("duplicate_slices") }
        switch reason("truncated_file") {
        case .pixelData?, .unreadableFile?: break
        default: Issue.record("truncated_file")
        }
        if case .unreadableFile = reason("wrong_value_length") {} else { Issue.record("wrong_value_length \(String(describing: reason("wrong_value_length")))") }
        switch reason("huge_matrix") {
        case .pixelData?, .tooManyVoxels?: break
        default: Issue.record("huge_matrix")
        }
        if case .multiFrame(3) = reason("multi_frame") {} else { Issue.record("multi_frame") }
        if case .unsupportedTransferSyntax(_, "1.2.840.10008.1.2.4.90") = reason("jpeg2000") {} else { Issue.record("jpeg2000") }
        if case .onlyNonImageObjects(1) = reason("non_image_only") {} else { Issue.record("non_image_only") }
        if case .severalSeries(let names) = reason("two_series") { #expect(names.count == 2) } else { Issue.record("two_series") }
    }

    /// The voxel limit is checked on the headers' sizes before anything is allocated.
    @Test func voxelLimitIsCheckedBeforeReading() throws {
        let series = try DICOMFolder.series(at: DICOMSeriesLocation(folder: Self.series.appendingPathComponent("axial_rle")))
        #expect(throws: DICOMError(path: series.location.path, reason: .tooManyVoxels(16 * 12 * 5, limit: 959))) {
            _ = try series.readVolume(maxVoxels: 959)
        }
        #expect(try series.readVolume(maxVoxels: 960).voxels.count == 960)
    }

    /// UIDs: the 2.25 form is the UUID as one decimal integer; under a root, at most 64 characters, no leading zero.
    /// int(uuid.UUID("123e4567-e89b-12d3-a456-426614174000")) in Python.
    static let pythonUUID = "24249434048109030647017182301789831168"

    @Test func newUIDsAreValid() throws {
        for _ in 0..<50 {
            let uid = DICOMUID.make()
            #expect(uid.hasPrefix("2.25.") && uid.count <= 64 && uid.dropFirst(5).allSatisfy(\.isNumber) && uid.dropFirst(5).first != "0")
            let rooted = DICOMUID.make(root: try DICOMUIDRoot("1.2.826.0.1.3680043.10.1019"))
            #expect(rooted.count == 64 || rooted.count < 64 && rooted.hasPrefix("1.2.826.0.1.3680043.10.1019."))
            #expect(rooted.split(separator: ".").allSatisfy { $0 == "0" || $0.first != "0" })
        }
        // Python: int(uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff")), int(uuid.UUID("00000000-0000-0000-0000-000000000100"))
        #expect(DICOMUID.decimal(UUID(uuidString: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF")!) == "340282366920938463463374607431768211455")
        #expect(DICOMUID.decimal(UUID(uuidString: "00000000-0000-0000-0000-000000000100")!) == "256")
        #expect(DICOMUID.decimal(UUID(uuidString: "123E4567-E89B-12D3-A456-426614174000")!) == "\(Self.pythonUUID)")
        #expect(throws: DICOMUIDRootError.self) { try DICOMUIDRoot("1.02.3") }
        #expect(throws: DICOMUIDRootError.self) { try DICOMUIDRoot("1.2.") }
        #expect(throws: DICOMUIDRootError.self) { try DICOMUIDRoot(String(repeating: "1.", count: 25) + "1") }
    }

    @Test func folderScanFindsBothSeriesAndIgnoresNotes() throws {
        let scan = try DICOMFolder.scan(Self.series.appendingPathComponent("two_series"))
        #expect(scan.series.count == 2)
        #expect(scan.unreadable.isEmpty)
        #expect(scan.series.allSatisfy { (try? $0.get()) != nil })
    }

    /// Stacking follows ImagePositionPatient · normal, not InstanceNumber (the fixtures number against the stack).
    @Test func slicesStackAlongTheNormal() throws {
        let series = try DICOMFolder.series(at: try #require(DICOMSeriesLocation(path: Self.series.appendingPathComponent("axial_implicit_le").path)))
        let z = series.slices.map(\.position.z)
        #expect(z == [30, 32.5, 35, 37.5, 40])
        // LPS (−12, −7, 30) → RAS (12, 7, 30); i along −x (R→L is +x in LPS), j along −y.
        let a = series.affine
        #expect(a[0, 3] == 12 && a[1, 3] == 7 && a[2, 3] == 30)
        #expect(a[0, 0] == -1.25 && a[1, 1] == -1.5 && abs(a[2, 2] - 2.5) < 1e-12)
    }
}
