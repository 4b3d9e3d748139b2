import Foundation
import MR2CTSupport
import NIfTI

/// Where a series is: a folder, and which of its series when it holds several ("FOLDER#SERIES" on the command
/// line, SERIES being the SeriesInstanceUID, with ".N" for the N-th orientation of a series split by orientation).
public struct DICOMSeriesLocation: Hashable, Sendable, CustomStringConvertible {
    public var folder: URL
    public var selector: String?

    public init(folder: URL, selector: String? = nil) {
        self.folder = folder.standardizedFileURL
        self.selector = selector
    }

    /// A path naming a series: an existing folder, or "FOLDER#SERIES" whose FOLDER exists (and which is not itself
    /// an existing file). Nil for anything else (a NIfTI file, a missing path). SERIES may itself hold a "#" (a
    /// non-conforming UID; found by fuzzing): the cut is the last "#" whose left part is an existing folder.
    public init?(path: String) {
        if FileKind.of(path) == .directory {
            self.init(folder: URL(fileURLWithPath: path))
            return
        }
        guard FileKind.of(path) == .missing else { return nil }
        var end = path.endIndex
        while let hash = path[..<end].lastIndex(of: "#") {
            let folder = String(path[..<hash]), selector = String(path[path.index(after: hash)...])
            if !selector.isEmpty, !selector.contains("/"), FileKind.of(folder) == .directory {
                self.init(folder: URL(fileURLWithPath: folder), selector: selector)
                return
            }
            end = hash
        }
        return nil
    }

    /// The command-line form: FOLDER or FOLDER#SERIES.
    public var path: String { selector.map { folder.path + "#" + $0 } ?? folder.path }
    public var description: String { path }

    /// A file-name stem for outputs: the folder's name, with the series after an underscore when one is named.
    public var stem: String {
        let name = folder.lastPathComponent
        return selector.map { name + "_" + $0 } ?? name
    }
}

/// One slice of an assembled series, in stacking order.
public struct DICOMSlice: Sendable {
    public var url: URL
    public var sopInstanceUID: String
    public var sopClassUID: String
    /// ImagePositionPatient (LPS mm).
    public var position: SIMD3<Double>
    var rescaleSlope: Double
    var rescaleIntercept: Double
}

/// An assembled single-frame image series: slices grouped by SeriesInstanceUID (split by orientation), stacked along
/// the slice normal, checked for tilt, duplicates, gaps and uneven spacing (PS3.3 C.7.6.2 Image Plane Module).
public struct DICOMSeries: Sendable {
    public var location: DICOMSeriesLocation
    public var seriesInstanceUID: String
    public var studyInstanceUID: String
    public var frameOfReferenceUID: String
    public var modality: String
    public var seriesDescription: String
    public var seriesNumber: Int?
    /// The transfer syntaxes of the slices, by DCMTK's name, sorted.
    public var transferSyntaxes: [String]
    /// (Columns, Rows, slices): i runs along a row (ImageOrientationPatient's row direction), j down the columns, k
    /// along the slice normal row × column.
    public var grid: GridSize
    /// Voxel to LPS (DICOM patient coordinates, mm).
    public var affineLPS: Affine
    /// The slices, k = 0 … nz−1.
    public var slices: [DICOMSlice]
    /// ImageOrientationPatient's row and column direction cosines.
    public var rowDirection: SIMD3<Double>
    public var columnDirection: SIMD3<Double>
    /// PixelSpacing: (between rows, between columns).
    public var pixelSpacing: SIMD2<Double>
    /// The slice spacing along the normal (SliceThickness, or 1 mm, for a single slice).
    public var sliceSpacing: Double
    var bitsAllocated: Int
    var pixelRepresentation: Int

    /// The stored pixel type, e.g. "uint16" or "int16" (BitsAllocated, PixelRepresentation).
    public var storedType: String { (pixelRepresentation == 1 ? "int" : "uint") + "\(bitsAllocated)" }

    /// Voxel to RAS+ (NIfTI world): LPS with x and y negated, as nibabel's DICOM wrappers and dcm2niix define it:
    /// column i ↦ row direction · PixelSpacing[1], column j ↦ column direction · PixelSpacing[0],
    /// column k ↦ (IPP_last − IPP_first)/(n − 1), translation IPP_first.
    public var affine: Affine {
        var a = affineLPS
        for c in 0..<4 {
            a[0, c] = -a[0, c]
            a[1, c] = -a[1, c]
        }
        return a
    }

    /// Reads the voxels: stored values · RescaleSlope + RescaleIntercept of each slice (PS3.3 C.11.1.1.2), on the
    /// grid above with its RAS affine. The voxel count is checked against `maxVoxels` before allocating.
    public func readVolume(maxVoxels: Int = 1 << 30) throws(DICOMError) -> Volume {
        let (count, overflow) = grid.nx.multipliedReportingOverflow(by: grid.ny)
        let (total, overflow2) = count.multipliedReportingOverflow(by: grid.nz)
        guard !overflow, !overflow2, total <= maxVoxels else {
            throw DICOMError(path: location.path, reason: .tooManyVoxels(overflow || overflow2 ? .max : total, limit: maxVoxels))
        }
        var voxels = [Float](repeating: 0, count: total)
        let sliceCount = count
        var failure: DICOMError?
        voxels.withUnsafeMutableBufferPointer { buffer in
            for (k, slice) in slices.enumerated() {
                let part = UnsafeMutableBufferPointer(rebasing: buffer[(k * sliceCount)..<((k + 1) * sliceCount)])
                do throws(DICOMReadFailure) {
                    let object = DICOMObject(url: slice.url, kind: .image)
                    try object.readPixels(into: part)
                } catch {
                    failure = DICOMError(path: location.path, reason: .pixelData(name: slice.url.lastPathComponent, reason: error.reason))
                    return
                }
                let slope = Float(slice.rescaleSlope), intercept = Float(slice.rescaleIntercept)
                if slope != 1 || intercept != 0 {
                    for v in 0..<part.count { part[v] = part[v] * slope + intercept }
                }
            }
        }
        if let failure { throw failure }
        return Volume(grid: grid, voxels: voxels, affine: affine)
    }
}

/// What a folder holds: its assembled series, or for each series that cannot be assembled the reason (its
/// location names it), and the files that are DICOM but unreadable.
public struct DICOMFolderScan: Sendable {
    public var folder: URL
    /// Every image series, assembled or refused, sorted by location.
    public var series: [Result<DICOMSeries, DICOMError>]
    /// Part-10 files DCMTK cannot parse (each a failure of its own, named by file).
    public var unreadable: [DICOMError]
    /// DICOM objects without pixel data.
    public var nonImageObjects: Int
    /// Whether any file is DICOM at all (images, non-image objects or unreadable Part-10 files; DICOMDIR aside).
    public var holdsDICOM: Bool { !series.isEmpty || !unreadable.isEmpty || nonImageObjects > 0 }
}

/// Series discovery in a folder (not recursive, hidden files skipped, non-DICOM files and DICOMDIR ignored).
public enum DICOMFolder {
    /// Scans `folder`: groups the image objects by SeriesInstanceUID, splits a series where the orientation
    /// changes (localisers), and assembles each part.
    public static func scan(_ folder: URL) throws(DICOMError) -> DICOMFolderScan {
        let folder = folder.standardizedFileURL
        guard FileKind.of(folder.path) == .directory else { throw DICOMError(path: folder.path, reason: .noSuchFolder) }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder.path) } catch {
            throw DICOMError(path: folder.path, reason: .cannotList)
        }
        var images: [DICOMObject] = []
        var unreadable: [DICOMError] = []
        var nonImage = 0
        for name in names.sorted() where !name.hasPrefix(".") {
            let url = folder.appendingPathComponent(name)
            // Regular files only: a FIFO would block, a device never end, a folder is not a slice.
            guard case .regular(let size) = FileKind.of(url.path), size >= 132 || size > 0 else { continue }
            guard !NIfTIFile.isVolumeFile(url) else { continue }
            let object: DICOMObject
            do { object = try DICOMObject.read(url) } catch {
                unreadable.append(DICOMError(path: url.path, reason: .unreadableFile(name: name, reason: error.reason)))
                continue
            }
            switch object.kind {
            case .notDICOM, .directory: continue
            case .nonImage: nonImage += 1
            case .image:
                if object.seriesInstanceUID.isEmpty {
                    unreadable.append(DICOMError(path: url.path, reason: .missingAttribute("SeriesInstanceUID")))
                } else if object.seriesInstanceUID.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "/" }) {
                    // It names the series on the command line (FOLDER#SERIES) and in one-line messages.
                    unreadable.append(DICOMError(path: url.path, reason: .unusableUID(object.seriesInstanceUID)))
                } else {
                    images.append(object)
                }
            case .unreadable(let reason):
                unreadable.append(DICOMError(path: url.path, reason: .unreadableFile(name: name, reason: reason)))
            }
        }
        // Group by series, then by orientation (rounded to 1e-4, so that rounding in the stored cosines does not split).
        var groups: [String: [DICOMObject]] = [:]
        for object in images { groups[object.seriesInstanceUID, default: []].append(object) }
        var parts: [(uid: String, part: Int?, objects: [DICOMObject])] = []
        for (uid, objects) in groups {
            var byOrientation: [[Int]: [DICOMObject]] = [:]
            var order: [[Int]] = []
            for object in objects {
                let key: [Int] = object.orientation.map { o in
                    [o.row.x, o.row.y, o.row.z, o.column.x, o.column.y, o.column.z].map { Int(($0 * 1e4).rounded()) }
                } ?? []
                if byOrientation[key] == nil { order.append(key) }
                byOrientation[key, default: []].append(object)
            }
            if order.count == 1 {
                parts.append((uid, nil, objects))
            } else {
                // Parts numbered by their first file's name, so that the numbering does not depend on hashing.
                let sorted = order.sorted { byOrientation[$0]![0].url.path < byOrientation[$1]![0].url.path }
                for (n, key) in sorted.enumerated() { parts.append((uid, n + 1, byOrientation[key]!)) }
            }
        }
        let single = parts.count == 1
        var series: [Result<DICOMSeries, DICOMError>] = []
        for part in parts {
            let selector = single ? nil : part.part.map { "\(part.uid).\($0)" } ?? part.uid
            let location = DICOMSeriesLocation(folder: folder, selector: selector)
            do { series.append(.success(try assemble(part.objects, location: location))) } catch {
                series.append(.failure(error))
            }
        }
        // A Part-10 file that does not parse may be a slice of any series here: converting the rest could silently
        // lose an end slice (no gap to see), so every series of the folder is refused, naming the file.
        if let bad = unreadable.first, case .unreadableFile(let name, let reason) = bad.reason {
            series = series.map { result in
                .failure(DICOMError(path: locationOf(result).path, reason: .unreadableFile(name: name, reason: reason)))
            }
        }
        series.sort { locationOf($0).path < locationOf($1).path }
        return DICOMFolderScan(folder: folder, series: series, unreadable: unreadable, nonImageObjects: nonImage)
    }

    static func locationOf(_ result: Result<DICOMSeries, DICOMError>) -> DICOMSeriesLocation {
        switch result {
        case .success(let s): return s.location
        case .failure(let e): return DICOMSeriesLocation(path: e.path) ?? DICOMSeriesLocation(folder: URL(fileURLWithPath: e.path))
        }
    }

    /// The series at `location`: the folder's only series, or the one its selector names.
    public static func series(at location: DICOMSeriesLocation) throws(DICOMError) -> DICOMSeries {
        let scan = try scan(location.folder)
        let names = scan.series.map { locationOf($0).selector ?? "" }
        if let selector = location.selector {
            guard let found = scan.series.first(where: { locationOf($0).selector == selector }) else {
                throw DICOMError(path: location.path, reason: .noSuchSeries(selector, available: names))
            }
            return try found.get()
        }
        if scan.series.count == 1 { return try scan.series[0].get() }
        if scan.series.count > 1 { throw DICOMError(path: location.path, reason: .severalSeries(names)) }
        if let first = scan.unreadable.first { throw first }
        if scan.nonImageObjects > 0 {
            throw DICOMError(path: location.path, reason: .onlyNonImageObjects(count: scan.nonImageObjects))
        }
        throw DICOMError(path: location.path, reason: .noDICOMImages)
    }

    /// Stacks one orientation part of a series.
    static func assemble(_ objects: [DICOMObject], location: DICOMSeriesLocation) throws(DICOMError) -> DICOMSeries {
        func fail(_ reason: DICOMError.Reason) -> DICOMError { DICOMError(path: location.path, reason: reason) }
        let first = objects[0]
        for object in objects {
            guard object.transferSyntaxDecodable else {
                throw fail(.unsupportedTransferSyntax(name: object.transferSyntaxName, uid: object.transferSyntaxUID))
            }
            guard object.numberOfFrames <= 1 else { throw fail(.multiFrame(frames: object.numberOfFrames)) }
            guard object.samplesPerPixel == 1 else { throw fail(.unsupportedPixels("SamplesPerPixel \(object.samplesPerPixel) (colour)")) }
            guard object.photometric == "MONOCHROME2" else {
                throw fail(.unsupportedPixels("PhotometricInterpretation \(object.photometric.isEmpty ? "missing" : object.photometric)"))
            }
            guard object.bitsAllocated == 8 || object.bitsAllocated == 16 else {
                throw fail(.unsupportedPixels("BitsAllocated \(object.bitsAllocated)"))
            }
            guard object.rows > 0, object.columns > 0 else { throw fail(.missingAttribute("Rows/Columns")) }
            guard let position = object.position else { throw fail(.missingAttribute("ImagePositionPatient")) }
            guard let orientation = object.orientation else { throw fail(.missingAttribute("ImageOrientationPatient")) }
            // Non-finite values ("NaN", "inf", 1e999 parse as such) would make a non-finite affine.
            guard position.x.isFinite, position.y.isFinite, position.z.isFinite else {
                throw fail(.missingAttribute("a finite ImagePositionPatient"))
            }
            guard [orientation.row, orientation.column].allSatisfy({ $0.x.isFinite && $0.y.isFinite && $0.z.isFinite }) else {
                throw fail(.missingAttribute("a finite ImageOrientationPatient"))
            }
            guard let spacing = object.pixelSpacing, spacing.x > 0, spacing.y > 0, spacing.x.isFinite, spacing.y.isFinite else {
                throw fail(.missingAttribute("a positive PixelSpacing"))
            }
            // Rescaled values are Float32: the slope and intercept, and the extreme rescaled value, must be finite
            // (and the slope non-zero) there, not only as Double.
            let slope = Float(object.rescaleSlope), intercept = Float(object.rescaleIntercept)
            let extreme = Double(1 << min(max(object.bitsAllocated, 1), 16)) * abs(object.rescaleSlope) + abs(object.rescaleIntercept)
            guard slope.isFinite, intercept.isFinite, slope != 0, Float(extreme).isFinite else {
                throw fail(.unsupportedPixels("RescaleSlope \(object.rescaleSlope), RescaleIntercept \(object.rescaleIntercept)"))
            }
            if let tilt = object.gantryTilt, abs(tilt) > 1e-3 { throw fail(.gantryTilt(degrees: tilt)) }
            if let length = object.pixelDataLength, length < Int64(object.rows) * Int64(object.columns) * Int64(object.bitsAllocated / 8) {
                throw fail(.pixelData(name: object.url.lastPathComponent,
                                      reason: "PixelData holds \(length) bytes, \(object.rows)×\(object.columns) pixels need \(object.rows * object.columns * object.bitsAllocated / 8)"))
            }
        }
        for object in objects.dropFirst() {
            if object.rows != first.rows || object.columns != first.columns {
                throw fail(.mixedSizes("\(first.columns)×\(first.rows) and \(object.columns)×\(object.rows) pixels"))
            }
            if simd_length(object.pixelSpacing! - first.pixelSpacing!) > 1e-4 {
                throw fail(.mixedSizes("PixelSpacing \(first.pixelSpacing!.x)\\\(first.pixelSpacing!.y) and \(object.pixelSpacing!.x)\\\(object.pixelSpacing!.y)"))
            }
            if object.bitsAllocated != first.bitsAllocated {
                throw fail(.mixedSizes("BitsAllocated \(first.bitsAllocated) and \(object.bitsAllocated)"))
            }
        }
        let (row, column) = first.orientation!
        let rowDirection = row / simd_length(row), columnDirection = column / simd_length(column)
        let normalRaw = cross(rowDirection, columnDirection)
        guard simd_length(normalRaw) > 0.5 else { throw fail(.missingAttribute("orthogonal ImageOrientationPatient cosines")) }
        let normal = normalRaw / simd_length(normalRaw)
        // Stacking order: position along the normal (not InstanceNumber), ties by file name for a stable order.
        let sorted = objects.map { ($0, simd_dot($0.position!, normal)) }
            .sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0.url.path < $1.0.url.path }
        let distances = sorted.map(\.1)
        var distinct = 1
        for k in 1..<max(1, distances.count) where distances[k] - distances[k - 1] > 0.01 { distinct += 1 }
        if distinct < distances.count { throw fail(.duplicateSlices(slices: distances.count, positions: distinct)) }
        // Tilt: every slice must lie on the line through the first one along the normal.
        let origin = sorted[0].0.position!
        var worstAngle = 0.0, tilted = false
        for (object, _) in sorted.dropFirst() {
            let offset = object.position! - origin
            let along = simd_dot(offset, normal)
            let perpendicular = simd_length(offset - along * normal)
            if perpendicular > max(0.01, 1e-4 * abs(along)) {
                tilted = true
                worstAngle = max(worstAngle, atan2(perpendicular, abs(along)) * 180 / .pi)
            }
        }
        if tilted { throw fail(.gantryTilt(degrees: worstAngle)) }
        var sliceStep = normal * (first.sliceThickness.flatMap { $0 > 0 ? $0 : nil } ?? 1)
        var sliceSpacing = simd_length(sliceStep)
        if sorted.count > 1 {
            let gaps = (1..<distances.count).map { distances[$0] - distances[$0 - 1] }
            let median = gaps.sorted()[gaps.count / 2]
            let tolerance = max(0.01, 1e-3 * median)
            for (k, gap) in gaps.enumerated() where abs(gap - median) > tolerance {
                if gap > 1.5 * median { throw fail(.missingSlices(gap: gap, spacing: median, at: distances[k])) }
                throw fail(.unevenSpacing(minimum: gaps.min()!, maximum: gaps.max()!))
            }
            sliceStep = (sorted.last!.0.position! - origin) / Double(sorted.count - 1)
            sliceSpacing = simd_length(sliceStep)
        }
        let spacing = first.pixelSpacing!
        let colStep = rowDirection * spacing.y, rowStep = columnDirection * spacing.x
        let affine = Affine(rows: [
            SIMD4(colStep.x, rowStep.x, sliceStep.x, origin.x),
            SIMD4(colStep.y, rowStep.y, sliceStep.y, origin.y),
            SIMD4(colStep.z, rowStep.z, sliceStep.z, origin.z),
            SIMD4(0, 0, 0, 1),
        ])
        let slices = sorted.map { object, _ in
            DICOMSlice(url: object.url, sopInstanceUID: object.sopInstanceUID, sopClassUID: object.sopClassUID,
                       position: object.position!, rescaleSlope: object.rescaleSlope, rescaleIntercept: object.rescaleIntercept)
        }
        return DICOMSeries(location: location, seriesInstanceUID: first.seriesInstanceUID, studyInstanceUID: first.studyInstanceUID,
                           frameOfReferenceUID: first.frameOfReferenceUID, modality: first.modality,
                           seriesDescription: first.seriesDescription, seriesNumber: first.seriesNumber,
                           transferSyntaxes: Set(objects.map(\.transferSyntaxName)).sorted(),
                           grid: GridSize(first.columns, first.rows, sorted.count), affineLPS: affine, slices: slices,
                           rowDirection: rowDirection, columnDirection: columnDirection, pixelSpacing: spacing,
                           sliceSpacing: sliceSpacing, bitsAllocated: first.bitsAllocated,
                           pixelRepresentation: first.pixelRepresentation)
    }
}

@inline(__always) func simd_dot(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double { (a * b).sum() }
@inline(__always) func simd_length(_ a: SIMD3<Double>) -> Double { simd_dot(a, a).squareRoot() }
@inline(__always) func simd_length(_ a: SIMD2<Double>) -> Double { (a * a).sum().squareRoot() }
@inline(__always) func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
