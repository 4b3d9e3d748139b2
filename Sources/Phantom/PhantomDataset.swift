import Foundation
import MR2CTSupport
import NIfTI
import Reporting

/// Which files `PhantomDataset.write` produces for each subject.
public enum PhantomOutput: String, CaseIterable, Codable, Sendable {
    /// `mr/<subject>.nii.gz`: T1-weighted MR, INT16.
    case mr
    /// `ct/<subject>.nii.gz`: CT in HU, INT16.
    case ct
    /// `labels/<subject>.nii.gz`: the tissue covering most of each voxel (`PhantomTissue` raw values), INT16;
    /// `labels/dseg.tsv` names them.
    case labels
    /// `preview/<subject>.png`: axial, coronal and sagittal mid-slices of MR and CT.
    case preview
}

/// What was written for one subject (one NDJSON line of `mr2ct phantom`).
public struct PhantomRecord: Codable, Sendable {
    public var subject: String
    public var index: Int
    public var seed: UInt64
    public var mr: String?
    public var ct: String?
    public var labels: String?
    public var preview: String?
    public var grid: [Int]
    public var spacing: [Double]
    public var orientation: String
}

/// Writes phantom subjects into folders with matching stems (`mr/sub-003.nii.gz`, `ct/sub-003.nii.gz`), the
/// layout `mr2ct train` (an MR folder and a CT folder) and `mr2ct evaluate` (predictions vs references by stem) use.
public enum PhantomDataset {
    /// An error naming the file or folder that could not be written.
    public struct WriteError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Generates and writes subjects `indices` of `generator` into `directory`, creating its sub-folders.
    /// Returns one record per subject, in order; `progress` (if any) advances by one per subject.
    public static func write(_ generator: PhantomGenerator, indices: [Int], to directory: URL,
                             outputs: Set<PhantomOutput> = [.mr, .ct],
                             progress: ProgressReporter? = nil,
                             onRecord: ((PhantomRecord) -> Void)? = nil) throws -> [PhantomRecord] {
        for output in PhantomOutput.allCases where outputs.contains(output) {
            let folder = directory.appendingPathComponent(output.rawValue, isDirectory: true)
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            } catch {
                throw WriteError(path: folder.path, reason: "cannot create folder (\(error.localizedDescription))")
            }
        }
        if outputs.contains(.labels) {
            // The label names, as a BIDS segmentation table (`mr2ct evaluate --labels` reads it from the folder).
            let table = directory.appendingPathComponent(PhantomOutput.labels.rawValue, isDirectory: true)
                .appendingPathComponent("dseg.tsv")
            try AtomicFile.write(Data(labelTable.utf8), to: table)
        }
        var records: [PhantomRecord] = []
        for (done, index) in indices.enumerated() {
            let subject = generator.subject(index)
            let name = subject.name
            func url(_ output: PhantomOutput, _ ext: String) -> URL {
                directory.appendingPathComponent(output.rawValue, isDirectory: true).appendingPathComponent(name + ext)
            }
            var record = PhantomRecord(subject: name, index: index, seed: generator.seed,
                                       grid: generator.configuration.gridSize, spacing: generator.configuration.spacing,
                                       orientation: subject.mr.affine.orientationCode)
            if outputs.contains(.mr) {
                let target = url(.mr, ".nii.gz")
                try NIfTIFile.write(subject.mr, to: target, as: .int16)
                record.mr = target.relativePath
            }
            if outputs.contains(.ct) {
                let target = url(.ct, ".nii.gz")
                try NIfTIFile.write(subject.ct, to: target, as: .int16)
                record.ct = target.relativePath
            }
            if outputs.contains(.labels) {
                let target = url(.labels, ".nii.gz")
                var labels = subject.ct.replacingVoxels(subject.labels.map { Float($0) })
                labels.header.descrip = "MR2CT phantom \(name) seed \(generator.seed) tissue labels"
                try NIfTIFile.write(labels, to: target, as: .int16)
                record.labels = target.relativePath
            }
            if outputs.contains(.preview) {
                let target = url(.preview, ".png")
                try previewGrid(subject).write(to: target)
                record.preview = target.relativePath
            }
            records.append(record)
            onRecord?(record)
            progress?.update(completed: done + 1, detail: name)
        }
        return records
    }

    /// The files an earlier `write` may have left in `directory`'s sub-folder for `output`: `sub-*` volumes and
    /// pictures, and `dseg.tsv` (nothing else there is touched).
    public static func ownedFiles(in directory: URL, output: PhantomOutput) -> [URL] {
        let folder = directory.appendingPathComponent(output.rawValue, isDirectory: true)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return names.sorted().filter { name in
            name == "dseg.tsv" || (name.hasPrefix("sub-") && (name.hasSuffix(".nii.gz") || name.hasSuffix(".png")))
        }.map { folder.appendingPathComponent($0) }
    }

    /// Why writing `outputs` into `directory` would mix with or replace earlier phantoms, or nil: a sub-folder
    /// this write fills already holds files. With `overwrite`, the phantom files of those sub-folders are removed
    /// first, and so are the labels and previews whenever MR or CT volumes are rewritten (they would describe
    /// other volumes); the caller then writes into clean folders.
    public static func prepareFolder(_ directory: URL, outputs: Set<PhantomOutput>, overwrite: Bool) throws {
        let occupied = PhantomOutput.allCases.filter { outputs.contains($0) }.filter { output in
            let folder = directory.appendingPathComponent(output.rawValue, isDirectory: true)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            return names.contains { !$0.hasPrefix(".") }
        }
        guard !occupied.isEmpty else { return }
        guard overwrite else {
            throw WriteError(path: directory.path, reason: "already holds " + occupied.map { "\($0.rawValue)/" }
                .joined(separator: ", ") + " files (use --overwrite to replace them, or another --out)")
        }
        var clear = Set(occupied)
        if !outputs.isDisjoint(with: [.mr, .ct]) { clear.formUnion([.labels, .preview]) }
        for output in PhantomOutput.allCases where clear.contains(output) {
            for file in ownedFiles(in: directory, output: output) where unlink(file.path) != 0 && errno != ENOENT {
                throw WriteError(path: file.path, reason: "cannot remove (\(String(cString: strerror(errno))))")
            }
        }
    }

    /// `labels/dseg.tsv`: the tissue label values and names (BIDS segmentation table: index, name).
    public static var labelTable: String {
        "index\tname\n" + PhantomTissue.allCases.map { "\($0.rawValue)\t\($0.name)\n" }.joined()
    }

    /// Mid-slices of a subject: MR (row 1) and CT in a head window W 1500 / L 300 (row 2), each axial, coronal
    /// and sagittal in voxel order (this grid is LPS-stored: anterior up and the subject's right on the left).
    public static func previewGrid(_ subject: PhantomSubject) -> ImageGrid {
        let mrValues = subject.mr.voxels.sorted()
        let mrWindow = IntensityWindow(lower: 0, upper: mrValues[Int(Double(mrValues.count - 1) * 0.995)] * 1.1)
        func views(_ volume: Volume, _ window: IntensityWindow, _ name: String) -> [GridImage] {
            let g = volume.grid
            let k = g.nz / 2, j = g.ny / 2, i = g.nx / 2
            var axial = [Float](), coronal = [Float](), sagittal = [Float]()
            for y in 0..<g.ny { for x in 0..<g.nx { axial.append(volume[x, y, k]) } }
            for z in (0..<g.nz).reversed() { for x in 0..<g.nx { coronal.append(volume[x, j, z]) } }
            for z in (0..<g.nz).reversed() { for y in 0..<g.ny { sagittal.append(volume[i, y, z]) } }
            // Stretch the through-plane axis by its spacing ratio (nearest neighbour) so anatomy keeps its shape.
            let ratio = max(1, Int((volume.spacing.z / volume.spacing.x).rounded()))
            func stretch(_ p: [Float], width: Int, rows: Int) -> GridImage {
                var out = [Float]()
                out.reserveCapacity(p.count * ratio)
                for r in 0..<rows { for _ in 0..<ratio { out.append(contentsOf: p[r * width..<(r + 1) * width]) } }
                return GridImage(width: width, height: rows * ratio, pixels: out, window: window)
            }
            let a = GridImage(width: g.nx, height: g.ny, pixels: axial, window: window, label: "\(name) axial")
            var c = stretch(coronal, width: g.nx, rows: g.nz); c.label = "coronal"
            var s = stretch(sagittal, width: g.ny, rows: g.nz); s.label = "sagittal"
            return [a, c, s]
        }
        return ImageGrid(rows: [views(subject.mr, mrWindow, "MR"), views(subject.ct, .ctHeadBone, "CT")], scale: 2)
    }
}
