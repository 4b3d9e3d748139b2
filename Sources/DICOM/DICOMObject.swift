import CDCMTK
import Foundation

/// A DICOM attribute tag (group, element), PS3.5 §7.1.
public struct DICOMTag: Hashable, Sendable, CustomStringConvertible {
    public var group: UInt16
    public var element: UInt16
    public init(_ group: UInt16, _ element: UInt16) {
        self.group = group
        self.element = element
    }
    public var description: String { String(format: "(%04X,%04X)", group, element) }
}

/// What one file in a folder is, as far as series assembly cares.
enum DICOMFileKind: Equatable {
    /// Not DICOM (no Part-10 preamble and not a dataset naming its SOP class and series): ignored.
    case notDICOM
    /// A DICOMDIR: ignored.
    case directory
    /// A DICOM object without PixelData (structured report, RT structure set …).
    case nonImage
    /// An image object.
    case image
    /// A Part-10 file DCMTK cannot parse (truncated, wrong value lengths …), with DCMTK's reason.
    case unreadable(String)
}

/// The header attributes of one DICOM object (PS3.3 C.7.6.2 Image Plane, C.7.6.3 Image Pixel, C.11.1 Modality
/// LUT), as the bridge read them; pixel values are read separately.
struct DICOMObject {
    var url: URL
    var kind: DICOMFileKind
    var sopClassUID = "", sopInstanceUID = "", seriesInstanceUID = "", studyInstanceUID = "", frameOfReferenceUID = ""
    var transferSyntaxUID = "", transferSyntaxName = ""
    var transferSyntaxDecodable = false
    var modality = "", seriesDescription = "", photometric = ""
    var seriesNumber: Int?
    var instanceNumber: Int?
    var rows = 0, columns = 0, samplesPerPixel = 0, bitsAllocated = 0, bitsStored = 0, pixelRepresentation = 0
    var numberOfFrames = 1
    /// ImagePositionPatient (LPS mm).
    var position: SIMD3<Double>?
    /// ImageOrientationPatient: row direction (along a row, i.e. increasing column index) and column direction.
    var orientation: (row: SIMD3<Double>, column: SIMD3<Double>)?
    /// PixelSpacing: (between rows, between columns), PS3.3 C.7.6.2.1.1.
    var pixelSpacing: SIMD2<Double>?
    var sliceThickness: Double?
    var rescaleSlope = 1.0, rescaleIntercept = 0.0
    var gantryTilt: Double?
    /// The PixelData element's stored length, nil when undefined (encapsulated).
    var pixelDataLength: Int64?

    /// Reads the header of `url` (PixelData not loaded). Throws the I/O reason when the file cannot be opened.
    static func read(_ url: URL) throws(DICOMReadFailure) -> DICOMObject {
        var info = cdcm_info()
        var error = [CChar](repeating: 0, count: 512)
        let status = cdcm_read_info(url.path, &info, &error, Int32(error.count))
        guard status == 0 else { throw DICOMReadFailure(reason: String(decoding: error.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        var object = DICOMObject(url: url, kind: .notDICOM)
        switch info.kind {
        case Int32(CDCM_DIRECTORY): object.kind = .directory
        case Int32(CDCM_NON_IMAGE): object.kind = .nonImage
        case Int32(CDCM_IMAGE): object.kind = .image
        case Int32(CDCM_UNREADABLE): object.kind = .unreadable(String(decoding: error.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        default: object.kind = .notDICOM
        }
        guard object.kind == .image || object.kind == .nonImage else { return object }
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self).trimmingCharacters(in: .whitespaces)
            }
        }
        object.sopClassUID = text(info.sop_class_uid)
        object.sopInstanceUID = text(info.sop_instance_uid)
        object.seriesInstanceUID = text(info.series_instance_uid)
        object.studyInstanceUID = text(info.study_instance_uid)
        object.frameOfReferenceUID = text(info.frame_of_reference_uid)
        object.transferSyntaxUID = text(info.transfer_syntax_uid)
        object.transferSyntaxName = text(info.transfer_syntax_name)
        object.transferSyntaxDecodable = info.transfer_syntax_decodable != 0
        object.modality = text(info.modality)
        object.seriesDescription = text(info.series_description)
        object.photometric = text(info.photometric)
        object.seriesNumber = info.has_series_number != 0 ? Int(info.series_number) : nil
        object.instanceNumber = info.has_instance_number != 0 ? Int(info.instance_number) : nil
        object.rows = Int(info.rows)
        object.columns = Int(info.columns)
        object.samplesPerPixel = Int(info.samples_per_pixel)
        object.bitsAllocated = Int(info.bits_allocated)
        object.bitsStored = Int(info.bits_stored)
        object.pixelRepresentation = Int(info.pixel_representation)
        object.numberOfFrames = Int(info.number_of_frames)
        if info.has_position != 0 { object.position = SIMD3(info.position.0, info.position.1, info.position.2) }
        if info.has_orientation != 0 {
            let o = info.orientation
            object.orientation = (SIMD3(o.0, o.1, o.2), SIMD3(o.3, o.4, o.5))
        }
        if info.has_pixel_spacing != 0 { object.pixelSpacing = SIMD2(info.pixel_spacing.0, info.pixel_spacing.1) }
        if info.has_slice_thickness != 0 { object.sliceThickness = info.slice_thickness }
        if info.has_rescale != 0 {
            object.rescaleSlope = info.rescale_slope
            object.rescaleIntercept = info.rescale_intercept
        }
        if info.has_gantry_tilt != 0 { object.gantryTilt = info.gantry_tilt }
        object.pixelDataLength = info.pixel_data_length >= 0 ? info.pixel_data_length : nil
        return object
    }

    /// Decodes this object's single frame into `out` (rows·columns stored values, column fastest), unscaled.
    func readPixels(into out: UnsafeMutableBufferPointer<Float>) throws(DICOMReadFailure) {
        var error = [CChar](repeating: 0, count: 512)
        let status = cdcm_read_pixels(url.path, out.baseAddress, Int64(out.count), &error, Int32(error.count))
        guard status == 0 else { throw DICOMReadFailure(reason: String(decoding: error.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
    }
}

/// A bridge call that failed, with DCMTK's or the bridge's reason.
struct DICOMReadFailure: Error {
    var reason: String
}

/// DCMTK as linked into MR2CT.
public enum DICOMLibrary {
    /// The DCMTK version, e.g. "DCMTK 3.6.7".
    public static var version: String { "DCMTK " + String(cString: cdcm_library_version()) }
}
