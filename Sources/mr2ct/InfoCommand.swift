import ArgumentParser
import Foundation
import MR2CTSupport
import NIfTI
import VolumeIO
import DICOM

/// `mr2ct info FILE...`: header facts and intensity statistics of NIfTI volumes.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print dims, spacing, datatype, scaling, qform/sform codes, orientation, affine and intensity range of NIfTI files and DICOM series.",
        discussion: """
            Spacing is shown in mm, converted from the file's spatial units (xyzt_units: µm, mm or m; unknown \
            units are taken as mm). A DICOM series is given as its folder (FOLDER#SERIES for one of several; a \
            folder holding several series or series subfolders is described series by series): its format is \
            "dicom", its affine the RAS one from ImagePositionPatient, ImageOrientationPatient and PixelSpacing \
            (as dcm2niix and nibabel compute it), with its SeriesInstanceUID, Modality and transfer syntaxes. With --json, prints one JSON object per file (NDJSON), in argument order; a \
            file that cannot be read gives {"path": …, "error": …}. Errors also go to stderr as \
            "mr2ct: <path>: <reason>". Exit status: 0 all files read, 1 any file failed, 64 usage error.
            """)

    @Flag(name: .long, help: "One JSON object per line (NDJSON).")
    var json = false

    @Option(name: .long, help: "Which 3-D volume of a 4-D file to describe (default: 0).")
    var volume: Int?

    @Flag(name: .long, help: "Replace NaN/Inf voxels with 0 (and report how many) instead of refusing the file.")
    var replaceNonFinite = false

    @Option(name: .long, help: "Largest 3-D voxel count accepted (checked before reading).")
    var maxVoxels: Int = 1 << 30

    @Argument(help: "NIfTI files (.nii, .nii.gz, .hdr, .hdr.gz) and DICOM series folders (FOLDER or FOLDER#SERIES).")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one file") }
        if let volume, volume < 0 { throw ValidationError("--volume must be 0 or more") }
        if maxVoxels < 1 { throw ValidationError("--max-voxels must be at least 1") }
    }

    func run() throws {
        var standardError = StandardErrorStream()
        var failed = false
        // A folder that is not itself one series stands for its series, each described (or refused) on its own.
        var inputs: [(path: String, problem: String?)] = []
        for file in files {
            if FileKind.of(file) == .directory, let entries = try? VolumeSource.entries(in: URL(fileURLWithPath: file)),
               !(entries.count == 1 && entries[0].path == URL(fileURLWithPath: file).standardizedFileURL.path), !entries.isEmpty {
                inputs += entries.map { ($0.path, $0.problem) }
            } else {
                inputs.append((file, nil))
            }
        }
        for (n, (file, problem)) in inputs.enumerated() {
            let url = URL(fileURLWithPath: file)
            do {
                if let problem { throw VolumeSourceError(path: file, reason: problem) }
                let summary = try VolumeSource.summary(of: url, volumeIndex: volume, maxVoxels: maxVoxels,
                                                       nonFinite: replaceNonFinite ? .replaceWithZero : .refuse)
                var shown = summary
                shown.path = file
                print(json ? shown.jsonLine : (n > 0 ? "\n" : "") + shown.text)
            } catch {
                failed = true
                let reason = (error as? NIfTIError)?.reason ?? (error as? VolumeSourceError)?.reason
                    ?? (error as? DICOMError).map { "\($0.reason)" } ?? "\(error)"
                print("mr2ct: \(file): \(reason)", to: &standardError)
                if json {
                    let object = ["path": file, "error": reason]
                    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
                    print(String(decoding: data, as: UTF8.self))
                }
            }
        }
        if failed { throw ExitCode.failure }
    }
}
