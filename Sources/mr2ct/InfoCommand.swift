import ArgumentParser
import Foundation
import MR2CTSupport
import NIfTI

/// `mr2ct info FILE...`: header facts and intensity statistics of NIfTI volumes.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print dims, spacing, datatype, scaling, qform/sform codes, orientation, affine and intensity range.",
        discussion: """
            Spacing is shown in mm, converted from the file's spatial units (xyzt_units: µm, mm or m; unknown \
            units are taken as mm). With --json, prints one JSON object per file (NDJSON), in argument order; a \
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

    @Argument(help: "NIfTI files (.nii, .nii.gz, .hdr, .hdr.gz).")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one file") }
        if let volume, volume < 0 { throw ValidationError("--volume must be 0 or more") }
        if maxVoxels < 1 { throw ValidationError("--max-voxels must be at least 1") }
    }

    func run() throws {
        var standardError = StandardErrorStream()
        var failed = false
        for (n, file) in files.enumerated() {
            let url = URL(fileURLWithPath: file)
            do {
                let summary = try VolumeSummary.of(url, volumeIndex: volume, maxVoxels: maxVoxels,
                                                   nonFinite: replaceNonFinite ? .replaceWithZero : .refuse)
                var shown = summary
                shown.path = file
                print(json ? shown.jsonLine : (n > 0 ? "\n" : "") + shown.text)
            } catch {
                failed = true
                let reason = (error as? NIfTIError)?.reason ?? "\(error)"
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
