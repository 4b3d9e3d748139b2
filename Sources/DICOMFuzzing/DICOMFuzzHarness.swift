import DICOM
import Foundation
import NIfTI
import VolumeIO

/// How one fuzz input becomes a folder of DICOM files: the input is cut at each occurrence of `separator` into at
/// most `maxFiles` files (what follows the last allowed cut, separators included, is the last file's). A separator
/// rather than length prefixes, so that libFuzzer's insertions and deletions inside one file leave the others
/// intact; the fuzz dictionary (Tests/Fuzz/dicom/dicom.dict) holds it, so that mutations can add or merge files.
/// With several files the folder reaches series assembly (grouping by SeriesInstanceUID, splitting by orientation,
/// sorting along the normal, duplicate, gap, spacing and size checks), not only single-file parsing.
public enum DICOMFuzzInput {
    /// "\u{1F}MR2CT-NEXT-FILE\u{1F}": unlikely in a DICOM file, and the unit separator keeps it off any VR's text.
    public static let separator: [UInt8] = Array("\u{1F}MR2CT-NEXT-FILE\u{1F}".utf8)
    public static let maxFiles = 3

    /// The files one input stands for (one at least, possibly empty).
    public static func files(of input: UnsafeRawBufferPointer) -> [[UInt8]] {
        var files: [[UInt8]] = []
        var start = 0, i = 0
        let n = input.count, m = separator.count
        while i + m <= n, files.count < maxFiles - 1 {
            var match = true
            for s in 0..<m where input[i + s] != separator[s] {
                match = false
                break
            }
            if match {
                files.append(Array(input[start..<i]))
                i += m
                start = i
            } else {
                i += 1
            }
        }
        files.append(Array(input[start..<n]))
        return files
    }

    /// The input that `files(of:)` splits back into `files` (for seeds; none of them may hold the separator).
    public static func pack(_ files: [[UInt8]]) -> [UInt8] {
        precondition((1...maxFiles).contains(files.count), "1 to \(maxFiles) files")
        var out: [UInt8] = []
        for (n, file) in files.enumerated() {
            if n > 0 { out += separator }
            out += file
        }
        return out
    }
}

/// What the reader made of one input.
public struct DICOMFuzzOutcome: Sendable, CustomStringConvertible {
    /// Volumes read (series that assembled and decoded).
    public var volumes = 0
    /// Inputs refused with a typed error, as `mr2ct` would print them (one line each, folder path removed).
    public var refusals: [String] = []
    /// Broken promises: an error of another type, a multi-line or misattributed message, a volume that fails the
    /// reader's invariants. Any entry is a bug (the fuzzer traps on it).
    public var violations: [String] = []

    public var description: String {
        if !violations.isEmpty { return "VIOLATION: " + violations.joined(separator: "; ") }
        if volumes > 0 { return "read \(volumes) volume(s)" + (refusals.isEmpty ? "" : ", refused: " + refusals.joined(separator: "; ")) }
        return refusals.isEmpty ? "no DICOM series" : "refused: " + refusals.joined(separator: "; ")
    }
}

/// The DICOM reader's fuzz harness (issue 19), shared by the libFuzzer target `FuzzDICOMReader` and the test suite's
/// in-process replay (`DICOMFuzzRegressionTests`). The input's files are written into a folder and read exactly as
/// every command reads an input folder: `VolumeSource.entries(in:)` (the scan: DCMTK header reads through the
/// CDCMTK bridge, series assembly), then per entry `VolumeSource.series` and `VolumeSource.read` (pixel decode,
/// rescale). Each entry must read into a volume that passes `invariantViolations`, or fail with a `DICOMError` /
/// `VolumeSourceError` whose text is one line naming a path in the folder.
public enum DICOMFuzzHarness {
    /// The voxel limit the reads use (the commands' default is 2^30; a small one keeps each input fast).
    public static let maxVoxels = 1 << 22

    /// Writes `input`'s files into `folder` (created if missing) as IM0, IM1, IM2, reads it, removes them again.
    public static func run(_ input: UnsafeRawBufferPointer, in folder: URL) -> DICOMFuzzOutcome {
        let fm = FileManager.default
        try? fm.createDirectory(at: folder, withIntermediateDirectories: true)
        let names = (0..<DICOMFuzzInput.maxFiles).map { folder.appendingPathComponent("IM\($0)") }
        for url in names { unlink(url.path) }
        let files = DICOMFuzzInput.files(of: input)
        defer { for url in names { unlink(url.path) } }
        for (n, bytes) in files.enumerated() {
            guard fm.createFile(atPath: names[n].path, contents: Data(bytes)) else {
                return DICOMFuzzOutcome(violations: ["harness: cannot write \(names[n].path)"])
            }
        }
        return read(folder.standardizedFileURL)
    }

    /// Reads every volume of `folder` the way the commands do and checks each outcome.
    static func read(_ folder: URL) -> DICOMFuzzOutcome {
        var outcome = DICOMFuzzOutcome()
        func typed(_ error: any Error, _ what: String) {
            let line: String, path: String
            switch error {
            case let e as DICOMError: (line, path) = (e.description, e.path)
            case let e as VolumeSourceError: (line, path) = (e.description, e.path)
            default:
                outcome.violations.append("\(what): untyped error \(type(of: error)): \(error)")
                return
            }
            if line.contains("\n") || line.contains("\r") { outcome.violations.append("\(what): multi-line error \(line.debugDescription)") }
            if !path.hasPrefix(folder.path) { outcome.violations.append("\(what): error names \(path), outside \(folder.path)") }
            outcome.refusals.append(line.replacingOccurrences(of: folder.path, with: "$FOLDER"))
        }
        let entries: [VolumeEntry]
        do { entries = try VolumeSource.entries(in: folder) } catch {
            typed(error, "entries")
            return outcome
        }
        for entry in entries {
            if let problem = entry.problem {
                typed(VolumeSourceError(path: entry.path, reason: problem), "entry")
                continue
            }
            guard VolumeSource.isSeries(entry.url) else {
                outcome.violations.append("entry \(entry.path) is neither a problem nor a DICOM series")
                continue
            }
            do {
                guard let series = try VolumeSource.series(entry.url) else {
                    outcome.violations.append("\(entry.path): a series location without a series")
                    continue
                }
                let volume = try VolumeSource.read(entry.url, options: NIfTIReadOptions(maxVoxels: maxVoxels))
                let broken = invariantViolations(series: series, volume: volume)
                outcome.violations += broken.map { "\(entry.path): \($0)" }
                if broken.isEmpty { outcome.volumes += 1 }
            } catch {
                typed(error, "read")
            }
        }
        return outcome
    }

    /// What a read series must satisfy (PS3.3 C.7.6.2 as the reader promises it): the grid is Columns × Rows × slices
    /// with a voxel per grid point, within the voxel limit; the affine is finite, affine (last row 0 0 0 1),
    /// invertible, its first two columns PixelSpacing[1] and PixelSpacing[0] long and its third the slice spacing;
    /// it is the LPS affine with x and y negated; each slice's ImagePositionPatient lies where the affine puts
    /// voxel (0, 0, k), strictly increasing along the stack; every voxel value is finite.
    public static func invariantViolations(series: DICOMSeries, volume: Volume) -> [String] {
        var broken: [String] = []
        let g = volume.grid
        if g != series.grid { broken.append("volume grid \(g) is not the series grid \(series.grid)") }
        if g.nx < 1 || g.ny < 1 || g.nz < 1 { broken.append("empty grid \(g)") }
        if g.nz != series.slices.count { broken.append("\(g.nz) planes for \(series.slices.count) slices") }
        if volume.voxels.count != g.count { broken.append("\(volume.voxels.count) voxels for a \(g) grid") }
        if g.count > maxVoxels { broken.append("\(g.count) voxels read beyond the limit \(maxVoxels)") }
        let a = volume.affine
        if a.rows.contains(where: { !($0.x.isFinite && $0.y.isFinite && $0.z.isFinite && $0.w.isFinite) }) {
            broken.append("non-finite affine \(a)")
            return broken
        }
        if a.rows[3] != SIMD4(0, 0, 0, 1) { broken.append("last affine row \(a.rows[3])") }
        if a.inverse == nil { broken.append("singular affine \(a)") }
        for r in 0..<4 {
            for c in 0..<4 where r < 2 ? a[r, c] != -series.affineLPS[r, c] : a[r, c] != series.affineLPS[r, c] {
                broken.append("RAS affine is not the LPS affine with x and y negated at (\(r), \(c))")
            }
        }
        let norms = a.columnNorms
        func close(_ x: Double, _ y: Double) -> Bool { abs(x - y) <= 1e-9 * max(1, abs(y)) }
        if !close(norms.x, series.pixelSpacing.y) { broken.append("i step \(norms.x) mm, PixelSpacing[1] \(series.pixelSpacing.y)") }
        if !close(norms.y, series.pixelSpacing.x) { broken.append("j step \(norms.y) mm, PixelSpacing[0] \(series.pixelSpacing.x)") }
        if !close(norms.z, series.sliceSpacing) { broken.append("k step \(norms.z) mm, slice spacing \(series.sliceSpacing)") }
        if !(series.sliceSpacing > 0) { broken.append("slice spacing \(series.sliceSpacing)") }
        // Positions: each gap is within max(0.01 mm, 0.1 %) of the median and the affine's step runs from the first
        // slice to the last, so slice k may be off by twice the tolerance per slice to the nearer end, plus the
        // 0.01 mm (or 1e-4 of the distance) off the normal the tilt check allows, plus rounding.
        let r = series.rowDirection, c = series.columnDirection
        let normal = SIMD3(r.y * c.z - r.z * c.y, r.z * c.x - r.x * c.z, r.x * c.y - r.y * c.x)
        let tolerance = max(0.01, 1e-3 * series.sliceSpacing) * 1.01 + 1e-9
        let origin = series.slices.first?.position ?? .zero
        var previous = -Double.infinity
        for (k, slice) in series.slices.enumerated() {
            let expected = series.affineLPS.apply(SIMD3(0, 0, Double(k)))
            let d = slice.position - expected, o = slice.position - origin
            let off = (d * d).sum().squareRoot(), distance = (o * o).sum().squareRoot()
            let magnitude = (origin * origin).sum().squareRoot() + distance
            let bound = 2 * Double(min(k, g.nz - 1 - k)) * tolerance + max(0.01, 1e-4 * distance) * 1.01 + 1e-12 * magnitude + 1e-9
            if !(off <= bound) { broken.append("slice \(k) at \(slice.position), the affine puts it at \(expected)") }
            let along = (slice.position * normal).sum()
            if !(along > previous) { broken.append("slice \(k) does not advance along the normal") }
            previous = along
        }
        if let bad = volume.voxels.firstIndex(where: { !$0.isFinite }) {
            broken.append("voxel \(bad) is \(volume.voxels[bad])")
        }
        return broken
    }
}
