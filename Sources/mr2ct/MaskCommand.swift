import ArgumentParser
import Foundation
import MR2CTSupport
import NIfTI
import VolumeIO
import Preprocessing

/// `mr2ct mask IN OUT`: the body mask MR2CT uses (training slice selection, air outside the body, metrics).
struct MaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mask",
        abstract: "Write the body mask of a volume (1 inside, 0 outside) on the same grid, as int16 NIfTI.",
        discussion: """
            The mask MR2CT uses everywhere (training, conversion, evaluation). Threshold: for MR a quarter of the tissue's signal level (the median of the voxels above Otsu's threshold, measured from the volume's minimum), -500 HU for CT (a volume whose minimum is at or below -900 is taken as CT unless --modality says otherwise). For CT a 4 mm opening removes the couch and positioning aids and the body's own outline is restored within 4 mm of what remains. Then: the largest 6-connected component and every other one of at least 20 mL, a 3 mm closing, 3-D hole filling, 2-D hole filling in each axial section, and a 2 mm margin (radii in mm on the voxel grid's own spacing). Prints one JSON line to stdout: {"input", "output", "modality", "threshold", "voxels", "fraction", "volume_ml"}. An existing OUT is replaced only with --overwrite, and OUT may never be IN itself. The output is written atomically.
            """)

    @Option(name: .long, help: "Threshold as MR (a quarter of the tissue level) or CT (-500 HU, couch removal); auto decides from the volume's minimum.")
    var modality: MaskModality = .auto

    @Flag(name: .long, help: "Do not fill 2-D holes in each axial section (3-D filling still happens).")
    var noSliceFill = false

    @Option(name: .long, help: "Radius (mm) of the final dilation. (default: 2)")
    var margin: Double?

    @Option(name: .long, help: "Which 3-D volume of a 4-D input to take.")
    var volume: Int?

    @Flag(name: .long, help: "Replace an existing OUT (never the input itself).")
    var overwrite = false

    @Argument(help: "Input volume (.nii, .nii.gz, .hdr, .hdr.gz), or a DICOM series (its folder, or FOLDER#SERIES).")
    var input: String

    @Argument(help: "Output mask (.nii, .nii.gz, .hdr, .hdr.gz).")
    var output: String

    func validate() throws {
        if let margin, !(margin.isFinite && (0...50).contains(margin)) { throw ValidationError("--margin must be between 0 and 50 mm") }
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
            let source = try VolumeSource.read(URL(fileURLWithPath: input), options: NIfTIReadOptions(volumeIndex: volume))
            var options = BodyMask.Options(modality: modality.modality)
            options.fillHolesPerSlice = !noSliceFill
            if let margin { options.margin = margin }
            let mask = BodyMask.compute(source, options: options)
            let inside = mask.reduce(0) { $0 + ($1 ? 1 : 0) }
            var result = source.replacingVoxels(mask.map { $0 ? 1 : 0 })
            result.header.sclSlope = 1
            result.header.sclInter = 0
            result.header.calMin = 0
            result.header.calMax = 1
            result.header.descrip = "mr2ct body mask"
            try NIfTIFile.write(result, to: URL(fileURLWithPath: output), as: .int16)
            let s = source.affine.columnNorms
            let line: [String: Any] = [
                "input": input, "output": output,
                "modality": BodyMask.isCT(source, options: options) ? "ct" : "mr",
                "threshold": Double(BodyMask.threshold(source, options: options)),
                "voxels": inside, "fraction": Double(inside) / Double(max(1, mask.count)),
                "volume_ml": Double(inside) * s.x * s.y * s.z / 1000,
            ]
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } catch let error as CustomStringConvertible & Error {
            print("mr2ct: \(error.description)", to: &standardError)
            throw ExitCode.failure
        }
    }
}

/// `mr2ct mask --modality`: how the volume is thresholded.
enum MaskModality: String, ExpressibleByArgument, CaseIterable {
    case auto, mr, ct
    var modality: Modality? {
        switch self {
        case .auto: nil
        case .mr: .mr
        case .ct: .ct
        }
    }
}
