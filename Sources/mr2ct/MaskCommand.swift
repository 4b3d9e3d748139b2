import ArgumentParser
import Foundation
import MR2CTSupport
import NIfTI
import Preprocessing

/// `mr2ct mask IN OUT`: the body mask MR2CT uses (training slice selection, air outside the body, metrics).
struct MaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mask",
        abstract: "Write the body mask of a volume (1 inside, 0 outside) on the same grid, as int16 NIfTI.",
        discussion: """
            The SynthRAD-style mask MR2CT uses everywhere: Otsu threshold, largest 6-connected component, 3-D hole \
            filling, 2-D hole filling in each axial section, one voxel of dilation. CT-like volumes (minimum at or \
            below -900) are clipped at -1024 HU before thresholding. Prints one JSON line to stdout: \
            {"input", "output", "threshold", "voxels", "fraction", "volume_ml"}. An existing OUT is replaced only \
            with --overwrite, and OUT may never be IN itself. The output is written atomically.
            """)

    @Flag(name: .long, help: "Do not fill 2-D holes in each axial section (3-D filling still happens).")
    var noSliceFill = false

    @Option(name: .long, help: "Dilation passes with the 6-neighbourhood (each adds one voxel).")
    var dilation = 1

    @Option(name: .long, help: "Which 3-D volume of a 4-D input to take.")
    var volume: Int?

    @Flag(name: .long, help: "Replace an existing OUT (never the input itself).")
    var overwrite = false

    @Argument(help: "Input volume (.nii, .nii.gz, .hdr, .hdr.gz).")
    var input: String

    @Argument(help: "Output mask (.nii, .nii.gz, .hdr, .hdr.gz).")
    var output: String

    func validate() throws {
        guard (0...20).contains(dilation) else { throw ValidationError("--dilation must be between 0 and 20") }
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
            let source = try NIfTIFile.read(URL(fileURLWithPath: input), options: NIfTIReadOptions(volumeIndex: volume))
            var options = BodyMask.Options()
            options.fillHolesPerSlice = !noSliceFill
            options.dilation = dilation
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
                "threshold": Double(BodyMask.otsuThreshold(source.voxels, bins: options.bins)),
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
