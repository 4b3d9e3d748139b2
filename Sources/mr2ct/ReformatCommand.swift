import ArgumentParser
import Foundation
import MR2CTSupport
import NIfTI
import DICOM
import VolumeIO

/// `mr2ct reformat IN OUT`: rewrites one volume as float32 or int16 NIfTI on the same grid.
struct ReformatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reformat",
        abstract: "Rewrite a volume as float32 or int16 NIfTI on the same grid (container by OUT's name).",
        discussion: """
            Copies dims, pixdim, qform, sform, both codes and xyzt_units; values are scaled by the input's \
            scl_slope/scl_inter and stored exactly (int16: rounded half away from zero, clipped). Use it to pick one \
            volume of a 4-D file (--volume), to change container (.nii, .nii.gz, .hdr/.img) or to store HU as int16. \
            An existing OUT is replaced only with --overwrite, and OUT may never be IN itself (compared as files, \
            not names). The output is written atomically: on any error nothing is left and an existing OUT is \
            untouched.
            """)

    @Option(name: .long, help: "Stored type of OUT: float32 or int16.")
    var datatype: String = "float32"

    @Option(name: .long, help: "Which 3-D volume of a 4-D input to take.")
    var volume: Int?

    @Flag(name: .long, help: "Replace NaN/Inf voxels with 0 (and report how many) instead of refusing the input.")
    var replaceNonFinite = false

    @Flag(name: .long, help: "Replace an existing OUT (never the input itself).")
    var overwrite = false

    @Argument(help: "Input volume (.nii, .nii.gz, .hdr, .hdr.gz), or a DICOM series (its folder, or FOLDER#SERIES), written as NIfTI on its grid.")
    var input: String

    @Argument(help: "Output volume (.nii, .nii.gz, .hdr, .hdr.gz).")
    var output: String

    func validate() throws {
        guard ["float32", "int16"].contains(datatype) else { throw ValidationError("--datatype must be float32 or int16") }
        if let volume, volume < 0 { throw ValidationError("--volume must be 0 or more") }
        guard NIfTIFile.isVolumeFile(URL(fileURLWithPath: output)) else {
            throw ValidationError("OUT must end in .nii, .nii.gz, .hdr or .hdr.gz")
        }
    }

    func run() throws {
        var standardError = StandardErrorStream()
        let inputs = NIfTIFile.companionFiles(of: URL(fileURLWithPath: input)).map(\.path)
        let outputs = NIfTIFile.companionFiles(of: URL(fileURLWithPath: output)).map(\.path)
        if let problem = OutputSafety.problem(outputs: outputs, inputs: inputs, overwrite: overwrite) {
            print("mr2ct: \(output): \(problem)", to: &standardError)
            throw ExitCode.failure
        }
        do {
            // A DICOM series (its folder, or FOLDER#SERIES) becomes a NIfTI file on its grid.
            if VolumeSource.isSeries(URL(fileURLWithPath: input)) {
                let series = try VolumeSource.read(URL(fileURLWithPath: input), options: NIfTIReadOptions(volumeIndex: volume))
                try NIfTIFile.write(series, to: URL(fileURLWithPath: output), as: datatype == "int16" ? .int16 : .float32)
                return
            }
            let result = try NIfTIFile.readReporting(URL(fileURLWithPath: input), options: NIfTIReadOptions(
                volumeIndex: volume, nonFinite: replaceNonFinite ? .replaceWithZero : .refuse))
            if result.replacedNonFiniteVoxels > 0 {
                print("mr2ct: \(input): replaced \(result.replacedNonFiniteVoxels) NaN/Inf voxels with 0", to: &standardError)
            }
            try NIfTIFile.write(result.volume, to: URL(fileURLWithPath: output), as: datatype == "int16" ? .int16 : .float32)
        } catch let error as NIfTIError {
            print("mr2ct: \(error.description)", to: &standardError)
            throw ExitCode.failure
        } catch let error as DICOMError {
            print("mr2ct: \(error.description)", to: &standardError)
            throw ExitCode.failure
        }
    }
}
