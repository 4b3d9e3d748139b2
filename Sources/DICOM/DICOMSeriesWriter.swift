import CDCMTK
import Foundation
import MR2CTSupport
import NIfTI

/// A UID root for `--uid-root`: digits and dots, components without leading zeros (PS3.5 §9.1), short enough to
/// leave room for a unique suffix within the 64-character limit.
public struct DICOMUIDRoot: Hashable, Sendable, CustomStringConvertible {
    public var root: String

    public init(_ root: String) throws(DICOMUIDRootError) {
        let parts = root.split(separator: ".", omittingEmptySubsequences: false)
        guard !root.isEmpty, root.count <= 40,
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) && ($0 == "0" || $0.first != "0") })
        else { throw DICOMUIDRootError(root: root) }
        self.root = root
    }

    public var description: String { root }
}

/// A `--uid-root` that is not a DICOM UID prefix.
public struct DICOMUIDRootError: Error, CustomStringConvertible, Sendable {
    public var root: String
    public var description: String {
        "UID root \"\(root)\" must be at most 40 characters of digits and dots, components without leading zeros (e.g. 1.2.826.0.1.3680043.10.1019)"
    }
}

/// New DICOM UIDs: "2.25." followed by a random (version 4) UUID as one decimal integer (PS3.5 §B.2), or, under
/// a UID root, the root followed by as many of that integer's last digits as fit in 64 characters.
public enum DICOMUID {
    public static func make(root: DICOMUIDRoot? = nil) -> String {
        let digits = decimal(UUID())
        guard let root else { return "2.25." + digits }
        var tail = String(digits.suffix(64 - root.root.count - 1))
        while tail.count > 1, tail.first == "0" { tail.removeFirst() }
        return root.root + "." + tail
    }

    /// The 128-bit UUID as a decimal integer without leading zeros.
    static func decimal(_ uuid: UUID) -> String {
        var bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
        var digits: [UInt8] = []
        while bytes.contains(where: { $0 != 0 }) {
            var remainder = 0
            for i in bytes.indices {
                let value = remainder * 256 + Int(bytes[i])
                bytes[i] = UInt8(value / 10)
                remainder = value % 10
            }
            digits.append(UInt8(remainder))
        }
        return digits.isEmpty ? "0" : String(digits.reversed().map { Character(String($0)) })
    }
}

/// What a written CT series says about itself.
public struct DICOMCTSeriesOptions: Sendable {
    /// SeriesDescription (LO, cut to 64 characters), e.g. "mr2ct 1.0 sCT (phantom_G_A)".
    public var seriesDescription: String
    /// DerivationDescription (ST): how the images were made.
    public var derivationDescription: String
    /// SoftwareVersions of the General Equipment module.
    public var softwareVersion: String
    /// `--uid-root`; nil for the 2.25 UUID form.
    public var uidRoot: DICOMUIDRoot?

    public init(seriesDescription: String, derivationDescription: String, softwareVersion: String, uidRoot: DICOMUIDRoot? = nil) {
        self.seriesDescription = seriesDescription
        self.derivationDescription = derivationDescription
        self.softwareVersion = softwareVersion
        self.uidRoot = uidRoot
    }
}

/// A synthetic CT written as a DICOM CT Image Storage series (PS3.3 A.3) on exactly its source MR series' grid:
/// slice k is written with the MR's slice k's Image Plane attributes; Patient, Patient Study, General Study and
/// Frame of Reference modules are copied from the MR; Series and SOP Instance UIDs are new.
public enum DICOMSeriesWriter {
    /// CT Image Storage (PS3.4 B.5).
    public static let ctImageStorage = "1.2.840.10008.5.1.4.1.1.2"

    /// Copied from each MR slice (its own slice): the patient, study and frame-of-reference identity, and the
    /// image plane, so that the CT lands on the MR's grid to the digit.
    public static let copiedFromMR: [(DICOMTag, String)] = [
        (DICOMTag(0x0008, 0x0005), "SpecificCharacterSet"),
        (DICOMTag(0x0010, 0x0010), "PatientName"), (DICOMTag(0x0010, 0x0020), "PatientID"),
        (DICOMTag(0x0010, 0x0021), "IssuerOfPatientID"), (DICOMTag(0x0010, 0x0030), "PatientBirthDate"),
        (DICOMTag(0x0010, 0x0032), "PatientBirthTime"), (DICOMTag(0x0010, 0x0040), "PatientSex"),
        (DICOMTag(0x0010, 0x1010), "PatientAge"), (DICOMTag(0x0010, 0x1020), "PatientSize"),
        (DICOMTag(0x0010, 0x1030), "PatientWeight"),
        (DICOMTag(0x0020, 0x000D), "StudyInstanceUID"), (DICOMTag(0x0008, 0x0020), "StudyDate"),
        (DICOMTag(0x0008, 0x0030), "StudyTime"), (DICOMTag(0x0008, 0x0090), "ReferringPhysicianName"),
        (DICOMTag(0x0020, 0x0010), "StudyID"), (DICOMTag(0x0008, 0x0050), "AccessionNumber"),
        (DICOMTag(0x0008, 0x1030), "StudyDescription"),
        (DICOMTag(0x0020, 0x0052), "FrameOfReferenceUID"), (DICOMTag(0x0020, 0x1040), "PositionReferenceIndicator"),
        (DICOMTag(0x0018, 0x5100), "PatientPosition"), (DICOMTag(0x0020, 0x0060), "Laterality"),
        (DICOMTag(0x0018, 0x0015), "BodyPartExamined"),
        (DICOMTag(0x0020, 0x0032), "ImagePositionPatient"), (DICOMTag(0x0020, 0x0037), "ImageOrientationPatient"),
        (DICOMTag(0x0028, 0x0030), "PixelSpacing"), (DICOMTag(0x0018, 0x0050), "SliceThickness"),
        (DICOMTag(0x0020, 0x1041), "SliceLocation"),
    ]

    /// Type-2 (and conditional 2C) attributes of the CT Image IOD written empty when the MR lacks them.
    static let typeTwo: [DICOMTag] = [
        DICOMTag(0x0010, 0x0010), DICOMTag(0x0010, 0x0020), DICOMTag(0x0010, 0x0030), DICOMTag(0x0010, 0x0040),
        DICOMTag(0x0008, 0x0020), DICOMTag(0x0008, 0x0030), DICOMTag(0x0008, 0x0090), DICOMTag(0x0020, 0x0010),
        DICOMTag(0x0008, 0x0050), DICOMTag(0x0020, 0x1040), DICOMTag(0x0018, 0x0050), DICOMTag(0x0018, 0x0060),
        DICOMTag(0x0020, 0x0012),
        // Type 2C in General Series: PatientPosition (CT and MR without a Patient Orientation Code Sequence) and
        // Laterality (paired body parts); empty when the MR does not say.
        DICOMTag(0x0018, 0x5100), DICOMTag(0x0020, 0x0060),
    ]

    /// Writes `syntheticCT` (HU, on `source`'s grid) into `folder` (which must not exist; its parent must): one
    /// file per slice, CT000001.dcm …, signed 16-bit HU (RescaleSlope 1, RescaleIntercept 0, RescaleType HU) with a
    /// soft-tissue window (WL 40, WW 400). Returns the new SeriesInstanceUID.
    public static func write(_ syntheticCT: Volume, source: DICOMSeries, to folder: URL,
                             options: DICOMCTSeriesOptions) throws(DICOMError) -> String {
        func fail(_ reason: String) -> DICOMError { DICOMError(path: folder.path, reason: .pixelData(name: "CT series", reason: reason)) }
        guard syntheticCT.grid == source.grid else {
            throw fail("the synthetic CT's grid \(syntheticCT.grid) is not its source series' \(source.grid)")
        }
        do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false) } catch {
            throw fail("cannot create the folder: \(error.localizedDescription)")
        }
        let seriesUID = DICOMUID.make(root: options.uidRoot)
        let now = Date()
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone.current
        formatter.dateFormat = "yyyyMMdd"
        let date = formatter.string(from: now)
        formatter.dateFormat = "HHmmss"
        let time = formatter.string(from: now)
        let seriesNumber = (source.seriesNumber ?? 0) + 1000
        let copy = copiedFromMR.map { cdcm_tag(group: $0.0.group, element: $0.0.element) }
        let ensure = typeTwo.map { cdcm_tag(group: $0.group, element: $0.element) }
        let sliceCount = source.grid.nx * source.grid.ny
        var pixels = [Int16](repeating: 0, count: sliceCount)
        for (k, slice) in source.slices.enumerated() {
            syntheticCT.voxels.withUnsafeBufferPointer { v in
                for p in 0..<sliceCount {
                    let x = v[k * sliceCount + p].rounded()
                    pixels[p] = x.isNaN ? -1024 : Int16(max(-32768, min(32767, x)))
                }
            }
            let values: [(UInt16, UInt16, String)] = [
                (0x0008, 0x0016, ctImageStorage), (0x0008, 0x0018, DICOMUID.make(root: options.uidRoot)),
                (0x0008, 0x0008, "DERIVED\\SECONDARY\\AXIAL"), (0x0008, 0x0060, "CT"),
                (0x0020, 0x000E, seriesUID), (0x0020, 0x0011, "\(seriesNumber)"),
                (0x0008, 0x103E, String(options.seriesDescription.prefix(64))),
                (0x0008, 0x2111, String(options.derivationDescription.prefix(1024))),
                (0x0008, 0x0021, date), (0x0008, 0x0031, time), (0x0008, 0x0023, date), (0x0008, 0x0033, time),
                (0x0008, 0x0012, date), (0x0008, 0x0013, time),
                (0x0008, 0x0070, "MR2CT"), (0x0018, 0x1020, String(options.softwareVersion.prefix(64))),
                (0x0020, 0x0013, "\(k + 1)"),
                (0x0028, 0x1052, "0"), (0x0028, 0x1053, "1"), (0x0028, 0x1054, "HU"),
                (0x0028, 0x1050, "40"), (0x0028, 0x1051, "400"),
            ]
            let output = folder.appendingPathComponent(String(format: "CT%06d.dcm", k + 1))
            var error = [CChar](repeating: 0, count: 512)
            let status: Int32 = withCStrings(values.map(\.2)) { strings in
                let cvalues = zip(values, strings).map { cdcm_value(tag: cdcm_tag(group: $0.0.0, element: $0.0.1), value: $0.1) }
                return cvalues.withUnsafeBufferPointer { cv in
                    copy.withUnsafeBufferPointer { cp in
                        ensure.withUnsafeBufferPointer { en in
                            pixels.withUnsafeBufferPointer { px in
                                slice.url.path.withCString { template in
                                    slice.sopClassUID.withCString { sopClass in
                                        slice.sopInstanceUID.withCString { sopInstance in
                                            output.path.withCString { out in
                                                var w = cdcm_slice_write(
                                                    template_path: template, copy: cp.baseAddress, copy_count: Int32(cp.count),
                                                    values: cv.baseAddress, value_count: Int32(cv.count),
                                                    ensure: en.baseAddress, ensure_count: Int32(en.count),
                                                    source_sop_class_uid: sopClass, source_sop_instance_uid: sopInstance,
                                                    referenced_series_uid: nil,
                                                    rows: Int32(source.grid.ny), columns: Int32(source.grid.nx),
                                                    pixels: px.baseAddress, output_path: out)
                                                return cdcm_write_slice(&w, &error, Int32(error.count))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            guard status == 0 else {
                throw fail(String(decoding: error.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        return seriesUID
    }

    /// Calls `body` with C strings of `strings`, valid during the call.
    static func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>]) -> R) -> R {
        let copies = strings.map { strdup($0)! }
        defer { copies.forEach { free($0) } }
        return body(copies.map { UnsafePointer($0) })
    }
}
