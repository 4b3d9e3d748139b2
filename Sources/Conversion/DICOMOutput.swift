import DICOM
import Foundation
import MR2CTSupport
import NIfTI
import VolumeIO

/// The container of `convert`'s synthetic CTs.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// An INT16 NIfTI file per MR (the default).
    case nifti
    /// A DICOM CT Image Storage series folder per MR, on the MR series' grid (issue 19).
    case dicom
}

/// How `--format dicom` writes: the UID root, the MR's DICOM series for a NIfTI MR, and the tool's version.
public struct DICOMOutputOptions: Sendable {
    /// `--uid-root`; nil for 2.25.<UUID>.
    public var uidRoot: DICOMUIDRoot?
    /// `--dicom-template`: the source MR's DICOM series (FOLDER or FOLDER#SERIES) for NIfTI inputs.
    public var template: String?
    /// "mr2ct 0.1.0", for SeriesDescription, DerivationDescription and SoftwareVersions.
    public var softwareVersion: String

    public init(uidRoot: DICOMUIDRoot? = nil, template: String? = nil, softwareVersion: String) {
        self.uidRoot = uidRoot
        self.template = template
        self.softwareVersion = softwareVersion
    }
}

/// A problem with DICOM output for one input, one line.
public struct DICOMOutputError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { reason }
}

extension ConversionRunner {
    /// The DICOM series a `--format dicom` output takes its patient, study, frame of reference and grid from: the
    /// input itself when it is a DICOM series, else `--dicom-template`; a NIfTI input without one is refused.
    static func dicomSource(for input: URL, options: ConversionOptions) throws -> DICOMSeries {
        if let series = try VolumeSource.series(input) { return series }
        guard let template = options.dicom?.template else {
            throw DICOMOutputError(reason: "--format dicom needs the MR's DICOM series: this input is NIfTI, so give --dicom-template SERIES (the DICOM series it was made from) or convert the DICOM series itself")
        }
        guard let location = DICOMSeriesLocation(path: URL(fileURLWithPath: template).standardizedFileURL.path) else {
            throw DICOMOutputError(reason: "--dicom-template \(template) is not a DICOM series folder (FOLDER or FOLDER#SERIES)")
        }
        return try DICOMFolder.series(at: location)
    }

    /// Refuses a `--dicom-template` series that is not on the NIfTI MR's exact grid (size, and affine within
    /// 1e-3 mm), as the CT must land on the MR voxel for voxel.
    static func checkTemplate(_ series: DICOMSeries, matches mr: Volume, input: URL) throws {
        guard series.grid == mr.grid else {
            throw DICOMOutputError(reason: "--dicom-template \(series.location.path) has the grid \(series.grid), the MR \(mr.grid)")
        }
        var worst = 0.0
        for r in 0..<3 { for c in 0..<4 { worst = max(worst, abs(series.affine[r, c] - mr.affine[r, c])) } }
        guard worst <= 1e-3 else {
            throw DICOMOutputError(reason: String(format: "--dicom-template %@ is not on the MR's grid: same size, but its voxel-to-world affine differs by up to %.4g mm", series.location.path, worst))
        }
    }

    /// Writes the CT series into a hidden temporary folder beside `output` and renames it into place (an existing
    /// series folder, allowed by --overwrite, is moved aside first and removed after the rename).
    static func writeDICOM(_ sct: Volume, source: DICOMSeries, to output: URL, options: ConversionOptions,
                           models: [String]) throws {
        let dicom = options.dicom ?? DICOMOutputOptions(softwareVersion: "mr2ct")
        let modelText = models.joined(separator: "+")
        let settings = DICOMCTSeriesOptions(
            seriesDescription: "\(dicom.softwareVersion) sCT (\(modelText))",
            derivationDescription: "Synthetic CT (HU) predicted from MR series \(source.seriesInstanceUID) by \(dicom.softwareVersion) with model \(modelText); not an acquired CT",
            softwareVersion: dicom.softwareVersion, uidRoot: dicom.uidRoot)
        let temporary = AtomicFile.temporaryURL(for: output)
        do {
            _ = try DICOMSeriesWriter.write(sct, source: source, to: temporary, options: settings)
            var aside: URL?
            if FileManager.default.fileExists(atPath: output.path) {
                let old = output.deletingLastPathComponent().appendingPathComponent(".old-\(getpid())-\(output.lastPathComponent)")
                guard rename(output.path, old.path) == 0 else {
                    throw DICOMOutputError(reason: "cannot move the existing \(output.path) aside: \(String(cString: strerror(errno)))")
                }
                aside = old
            }
            guard rename(temporary.path, output.path) == 0 else {
                let reason = String(cString: strerror(errno))
                if let aside { rename(aside.path, output.path) }
                throw DICOMOutputError(reason: "cannot rename the series folder into \(output.path): \(reason)")
            }
            if let aside { try? FileManager.default.removeItem(at: aside) }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}
