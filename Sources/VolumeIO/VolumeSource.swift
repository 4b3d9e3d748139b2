import DICOM
import Foundation
import MR2CTSupport
import NIfTI

/// One volume an input folder stands for: a NIfTI file, a DICOM series (FOLDER or FOLDER#SERIES), or an input that
/// cannot be used, with the reason (a refused series, an unreadable DICOM file), reported as a failed item.
public struct VolumeEntry: Hashable, Sendable {
    /// The path: a NIfTI file, a series folder, or FOLDER#SERIES.
    public var path: String
    /// Why it cannot be used, known from the scan; nil when it can be read.
    public var problem: String?

    public init(path: String, problem: String? = nil) {
        self.path = path
        self.problem = problem
    }

    public var url: URL { URL(fileURLWithPath: path) }
}

/// Every command's one way to read an input volume: NIfTI files through `NIfTIFile`, DICOM series (a folder, or
/// FOLDER#SERIES for one of a folder's several series) through `DICOMFolder`, into the same `Volume`.
public enum VolumeSource {
    /// True when `url` names a DICOM series location (an existing folder, or FOLDER#SERIES) rather than a file.
    public static func isSeries(_ url: URL) -> Bool { DICOMSeriesLocation(path: url.path) != nil }

    /// The series `url` names, assembled (geometry checked); nil for a NIfTI (or any non-series) path.
    public static func series(_ url: URL) throws -> DICOMSeries? {
        guard let location = DICOMSeriesLocation(path: url.path) else { return nil }
        return try DICOMFolder.series(at: location)
    }

    /// The grid and RAS affine of the volume at `url` from headers alone, no voxel read: a NIfTI header's dim[1…3]
    /// and affine (`NIfTIFile.readHeader`), or a DICOM series' assembly (DCMTK header reads, PixelData left on
    /// disk: `DICOMSeries.grid` and `.affine`, the same as `read` gives the volume).
    public static func geometry(of url: URL) throws -> VolumeGeometry {
        if let series = try series(url) { return VolumeGeometry(grid: series.grid, affine: series.affine) }
        let header = try NIfTIFile.readHeader(url)
        let dim = header.dim
        guard dim.count > 3 else { throw VolumeSourceError(path: url.path, reason: "the NIfTI header has fewer than three dimensions") }
        return VolumeGeometry(grid: GridSize(max(dim[1], 1), max(dim[2], 1), max(dim[3], 1)), affine: header.affine)
    }

    /// Reads the volume at `url`: a DICOM series with its RAS affine (`DICOMSeries.affine`) and rescaled values,
    /// or a NIfTI file as `NIfTIFile.read` reads it. `options.maxVoxels` bounds both before allocating.
    public static func read(_ url: URL, options: NIfTIReadOptions = .init()) throws -> Volume {
        guard let location = DICOMSeriesLocation(path: url.path) else { return try NIfTIFile.read(url, options: options) }
        if let index = options.volumeIndex, index != 0 {
            throw DICOMError(path: location.path, reason: .unsupportedPixels("volume index \(index) asked of a single 3-D DICOM series"))
        }
        return try DICOMFolder.series(at: location).readVolume(maxVoxels: options.maxVoxels)
    }

    /// A file-name stem for outputs: the NIfTI name without its suffix, or the series folder's name (with
    /// "_SERIES" when the folder holds several).
    public static func stem(of url: URL) -> String {
        if let location = DICOMSeriesLocation(path: url.path) { return location.stem }
        return NIfTIFile.stem(of: url)
    }

    /// The stem among `keys` that `candidate` belongs to, matched as `mr2ct evaluate` matches a prediction to its
    /// reference and `train --paired` an MR to its CT: the longest key that equals `candidate` or starts it followed
    /// by `_`, `-` or `.` (`p1_sct` and `p1` ↔ `p1`); nil if none.
    public static func matchingStem(for candidate: String, among keys: [String]) -> String? {
        keys.filter { key in
            candidate == key || (candidate.hasPrefix(key)
                && candidate.dropFirst(key.count).first.map { "_-.".contains($0) } == true)
        }.max { $0.count < $1.count }
    }

    /// The volumes of a folder: its NIfTI files (not recursive, as `NIfTIFile.volumeFiles`), the DICOM series among
    /// its files, and the DICOM series of its immediate subfolders (the usual one-folder-per-series export).
    /// Refused series and unreadable DICOM files are entries with a problem, so that a batch reports each and goes
    /// on. Sorted by path.
    public static func entries(in folder: URL) throws -> [VolumeEntry] {
        let folder = folder.standardizedFileURL
        var entries = try NIfTIFile.volumeFiles(in: folder).map { VolumeEntry(path: $0.standardizedFileURL.path) }
        entries += dicomEntries(in: folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names.sorted() where !name.hasPrefix(".") {
            let sub = folder.appendingPathComponent(name)
            if FileKind.of(sub.path) == .directory { entries += dicomEntries(in: sub) }
        }
        return entries.sorted { $0.path < $1.path }
    }

    /// The DICOM series of one folder as entries (none when it holds no DICOM).
    static func dicomEntries(in folder: URL) -> [VolumeEntry] {
        let scan: DICOMFolderScan
        do { scan = try DICOMFolder.scan(folder) } catch { return [VolumeEntry(path: error.path, problem: "\(error.reason)")] }
        var entries: [VolumeEntry] = scan.series.map { result in
            switch result {
            case .success(let series): return VolumeEntry(path: series.location.path)
            case .failure(let error): return VolumeEntry(path: error.path, problem: "\(error.reason)")
            }
        }
        if scan.series.isEmpty {
            entries += scan.unreadable.map { VolumeEntry(path: $0.path, problem: "\($0.reason)") }
            if scan.unreadable.isEmpty, scan.nonImageObjects > 0 {
                entries.append(VolumeEntry(path: folder.path, problem: "\(DICOMError.Reason.onlyNonImageObjects(count: scan.nonImageObjects))"))
            }
        }
        return entries
    }

    /// The readable volumes of a training or evaluation folder, refusing the folder when any entry has a problem
    /// (training on a silently shortened list would be worse than stopping).
    public static func volumes(in folder: URL) throws -> [URL] {
        let entries = try entries(in: folder)
        if let bad = entries.first(where: { $0.problem != nil }) {
            throw VolumeSourceError(path: bad.path, reason: bad.problem!)
        }
        return entries.map(\.url)
    }
}

/// A volume's grid and voxel-to-RAS affine, known from its headers (`VolumeSource.geometry(of:)`).
public struct VolumeGeometry: Hashable, Sendable {
    public var grid: GridSize
    public var affine: Affine
    public init(grid: GridSize, affine: Affine) {
        self.grid = grid
        self.affine = affine
    }
}

/// An input entry that cannot be used; `description` is "<path>: <reason>".
public struct VolumeSourceError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

extension VolumeSource {
    /// What `mr2ct info` reports: `VolumeSummary.of` for a NIfTI file; for a DICOM series its grid, RAS affine
    /// (affine_source "dicom": ImagePositionPatient/ImageOrientationPatient/PixelSpacing), stored type, rescaled
    /// intensity range, SeriesInstanceUID, Modality and transfer syntaxes.
    public static func summary(of url: URL, volumeIndex: Int? = nil, maxVoxels: Int = 1 << 30,
                               nonFinite: NonFinitePolicy = .refuse) throws -> VolumeSummary {
        guard let series = try series(url) else {
            return try VolumeSummary.of(url, volumeIndex: volumeIndex, maxVoxels: maxVoxels, nonFinite: nonFinite)
        }
        let volume = try read(url, options: NIfTIReadOptions(volumeIndex: volumeIndex, maxVoxels: maxVoxels))
        var summary = VolumeSummary.describing(volume, path: url.path, format: "dicom", datatype: series.storedType)
        summary.affineSource = "dicom"
        summary.seriesInstanceUID = series.seriesInstanceUID
        summary.modality = series.modality
        summary.transferSyntaxes = series.transferSyntaxes
        return summary
    }
}
