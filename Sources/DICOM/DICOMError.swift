import Foundation

/// Why a DICOM folder or series cannot be read; `description` is one line, "<series>: <reason>".
public struct DICOMError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The series location (FOLDER or FOLDER#SERIES) or file the reason is about.
    public var path: String
    public var reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    /// The reasons, one case each (PS3.3 attribute names in the texts).
    public enum Reason: Sendable, Equatable, CustomStringConvertible {
        case noSuchFolder
        case cannotList
        case noDICOMImages
        case onlyNonImageObjects(count: Int)
        case severalSeries([String])
        case noSuchSeries(String, available: [String])
        case unreadableFile(name: String, reason: String)
        case unsupportedTransferSyntax(name: String, uid: String)
        case multiFrame(frames: Int)
        case unsupportedPixels(String)
        case missingAttribute(String)
        /// A SeriesInstanceUID that cannot name a series (control characters or "/"; PS3.5 §9.1 allows digits and dots).
        case unusableUID(String)
        case gantryTilt(degrees: Double)
        case duplicateSlices(slices: Int, positions: Int)
        case missingSlices(gap: Double, spacing: Double, at: Double)
        case unevenSpacing(minimum: Double, maximum: Double)
        case mixedSizes(String)
        case tooManyVoxels(Int, limit: Int)
        case pixelData(name: String, reason: String)

        /// One line whatever the file held: control characters in attribute values quoted here (PhotometricInterpretation
        /// "MONO\rME2" once split a message; found by fuzzing) are written as \u{…} escapes.
        public var description: String { DICOMError.oneLine(text) }

        var text: String {
            switch self {
            case .noSuchFolder: return "no such folder"
            case .cannotList: return "cannot list folder"
            case .noDICOMImages: return "is a folder holding no DICOM image series"
            case .onlyNonImageObjects(let n):
                return "holds only non-image DICOM objects (\(n): structured reports, RT structures, presentation states …)"
            case .severalSeries(let names):
                return "holds \(names.count) series; name one as FOLDER#SERIES (\(names.joined(separator: ", ")))"
            case .noSuchSeries(let s, let names):
                return "no series \(s) in this folder (it holds \(names.isEmpty ? "none" : names.joined(separator: ", ")))"
            case .unreadableFile(let name, let reason):
                return "\(name) in this folder is not readable as DICOM (\(reason)); refused, as it may be one of its slices"
            case .unsupportedTransferSyntax(let name, let uid):
                return "transfer syntax \(name) (\(uid)) is not supported (supported: implicit/explicit VR little endian, explicit VR big endian, deflated, JPEG baseline/extended/lossless, JPEG-LS, RLE)"
            case .multiFrame(let n):
                return "multi-frame objects (\(n) frames, e.g. enhanced MR) are not supported: export the series as single-frame images"
            case .unsupportedPixels(let what): return "unsupported pixel format: \(what)"
            case .missingAttribute(let name): return "a slice lacks \(name)"
            case .unusableUID(let uid):
                return "SeriesInstanceUID \(uid.debugDescription) holds control characters or \"/\" (PS3.5 §9.1: digits and dots)"
            case .gantryTilt(let degrees):
                return String(format: "gantry tilt or sheared slice stack (%.3f°) is not supported: the slices do not stack along their normal", degrees)
            case .duplicateSlices(let slices, let positions):
                return "duplicated slices: \(slices) images at \(positions) positions (several echoes, phases or volumes in one series?)"
            case .missingSlices(let gap, let spacing, let at):
                return String(format: "missing slice(s): a gap of %.4g mm at %.4g mm along the normal where the spacing is %.4g mm", gap, at, spacing)
            case .unevenSpacing(let lo, let hi):
                return String(format: "uneven slice spacing (%.4g to %.4g mm)", lo, hi)
            case .mixedSizes(let what): return "mixed sizes within one orientation: \(what)"
            case .tooManyVoxels(let n, let limit): return "\(n) voxels exceed the limit of \(limit)"
            case .pixelData(let name, let reason): return "\(name): \(reason)"
            }
        }
    }

    public var description: String { Self.oneLine(path) + ": \(reason)" }

    /// `text` with every C0/C1 control character (line breaks included) and DEL as a \u{…} escape.
    static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar) { out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}" } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) }
}
