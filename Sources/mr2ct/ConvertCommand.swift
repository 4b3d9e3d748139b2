import ArgumentParser
import Conversion
import CycleGAN
import SyntheticCT
import DICOM
import Foundation
import MR2CTSupport
import NeuralNetwork
import NIfTI
import Preprocessing

/// `mr2ct convert`: MR volumes -> synthetic CT volumes (INT16 NIfTI in HU on the MR's grid), one JSON line each.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert MR volumes into synthetic CT volumes (INT16 NIfTI or a DICOM CT series, HU, on each MR's grid).",
        discussion: """
        INPUT is a NIfTI file, a folder (its .nii/.nii.gz/.hdr files and the DICOM series in it and in its immediate subfolders), a DICOM series (its folder, or FOLDER#SERIES with the SeriesInstanceUID for one of a folder's several series), or - to read paths from standard input, one per line. A DICOM series that cannot be assembled (gantry tilt, missing or duplicated slices, uneven spacing, mixed sizes, multi-frame objects, an unsupported transfer syntax, an unreadable file in its folder) is one error line naming it; the other inputs are still converted. Slices are converted whole at the model's spacing (padded, never cropped), so no part of the body is lost.

        --format dicom writes, per MR, a folder of DICOM CT Image Storage files (named as the NIfTI output would be, without .nii.gz) on exactly the MR series' grid: patient, study and frame-of-reference attributes copied from the MR, new Series and SOP Instance UIDs, signed 16-bit HU. It needs the MR's DICOM series: the input itself, or --dicom-template for a NIfTI MR.

        Standard output gets one JSON line per volume with the keys input, output, seconds, status (ok, skipped or error), error (null or "<input>: <reason>") and qa. "qa" (for every converted volume) gives the share of the body inside the predicted field, the shares of the body predicted as air (< -500 HU) and as very dense (> 2000 HU), the fraction and mean HU per tissue band, the distances of the MR's body histograms (intensity, texture) from the model's training MR (null for models stored without them), and "warnings", a list of objects with a code and a message; the codes are body_outside_field, input_unlike_training, spacing_outside_range and plane_not_trained.

        Progress goes to standard error. Exit status 0 when every volume succeeded or was skipped, 1 when any failed (the others are still converted) or the input list is empty, 64 for usage errors. Outputs are written to a temporary file and renamed: an interrupted run never leaves a partial output under its final name.
        """
    )

    @Option(name: .long, help: ArgumentHelp("A run folder of mr2ct train or a generator .safetensors file; repeat it for an ensemble (the synthetic CTs are averaged in HU).",
                                            valueName: "RUN_DIR|FILE"))
    var model: [String] = []

    @Argument(help: ArgumentHelp("MR volumes, folders of volumes, or - for paths on standard input.", valueName: "INPUT"))
    var inputs: [String]

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("Output folder (created if missing).", valueName: "OUTDIR"))
    var output: String

    @Option(name: .long, help: ArgumentHelp("Output file name pattern; {stem} is the input's name without .nii/.nii.gz.",
                                            valueName: "PATTERN"))
    var name: String = OutputNaming.defaultPattern

    @Flag(name: .long, help: "Skip inputs whose output exists (status \"skipped\").")
    var skipExisting = false

    @Flag(name: .long, help: "Replace existing outputs. Without this or --skip-existing an existing output is an error.")
    var overwrite = false

    @Option(name: .long, help: ArgumentHelp("Convert only the I-th (0-based) of N parts of the sorted input list.", valueName: "I/N"))
    var shard: String?

    @Option(name: .long, help: ArgumentHelp("Slice planes, comma-separated; several are averaged. (default: the model's)",
                                            valueName: "axial,coronal,sagittal"))
    var planes: String?

    @Flag(name: .long, help: "Also predict each slice mirrored left-right and average the two (2x the time).")
    var mirrorAverage = false

    @Option(name: .long, help: "Slices in flight: the two generator calls run at once (one per core) take half each, each at most 65 536 pixels of slices (at least one slice; larger calls are no faster).")
    var batchSize: Int = 4

    @Option(name: .long, help: "Compute threads (OpenBLAS and element-wise loops). (default: all cores)")
    var threads: Int?
    @Option(name: .long, help: "Arithmetic of the generator's convolutions: f32 (default, PyTorch's float32) or bf16 (bfloat16 operands, float32 accumulation: within about 8 HU mean absolute of f32 on the golden network; native oneDNN kernels only on CPUs with AVX512 BF16, emulated — slower than f32 — elsewhere).")
    var precision: Precision = .f32

    @Option(name: .long, help: ArgumentHelp("Also write <output stem>.png there: the central axial slice, MR | sCT, with the QA verdict below.", valueName: "DIR"))
    var preview: String?

    @Flag(name: .long, help: "Replace NaN/Inf voxels of an input with 0 instead of refusing the file.")
    var replaceNonFinite = false

    @Option(name: .long, help: ArgumentHelp("Your own body contour instead of the automatic mask: a mask volume (voxels > 0 inside) for a single input, or a folder of masks matched to the inputs by name as evaluate matches them (x_mask.nii.gz for x.nii.gz). Each must be on its MR's exact grid. The sCT is air only outside it.", valueName: "FILE|DIR"))
    var mask: String?

    @Option(name: .long, help: ArgumentHelp("Also write the per-voxel standard deviation (HU, float32, on the MR's grid) across the predictions averaged (ensemble members, planes, mirror images): a .nii/.nii.gz file for a single input, or a folder (<output stem>_sd.nii.gz). Needs more than one prediction.", valueName: "FILE|DIR"))
    var uncertainty: String?

    @Flag(name: .long, help: "Treat any QA warning as an error: status error, exit 1, and the volume's output is not written.")
    var strict = false
    @Option(name: .long, help: ArgumentHelp("Which 3-D volume of 4-D inputs to convert, 0-based. (default: 4-D inputs are refused)", valueName: "N"))
    var volume: Int?

    @Option(name: .long, help: ArgumentHelp("Largest 3-D voxel count accepted per input, checked on the header before reading.", valueName: "N"))
    var maxVoxels: Int = NIfTIReadOptions().maxVoxels

    @Flag(name: .long, help: "No progress on standard error (errors are still printed).")
    var quiet = false

    @Option(name: .long, help: ArgumentHelp("Output container: nifti (an INT16 .nii.gz file per MR) or dicom (a DICOM CT series folder per MR, for a planning system).", valueName: "nifti|dicom"))
    var format: OutputFormat = .nifti

    @Option(name: .long, help: ArgumentHelp("With --format dicom: the root of the new Series and SOP Instance UIDs (your organisation's). (default: 2.25.<random UUID as an integer>)", valueName: "UID"))
    var uidRoot: String?

    @Option(name: .long, help: ArgumentHelp("With --format dicom and a NIfTI MR: the MR's DICOM series (FOLDER or FOLDER#SERIES), on exactly the NIfTI's grid, whose patient, study and frame of reference the CT series takes.", valueName: "SERIES"))
    var dicomTemplate: String?

    func validate() throws {
        if model.isEmpty { throw ValidationError("Missing expected argument '--model <RUN_DIR|FILE>'") }
        if skipExisting && overwrite { throw ValidationError("--skip-existing and --overwrite exclude each other") }
        if let shard { do { _ = try Shard(parsing: shard) } catch { throw ValidationError("\(error)") } }
        do { _ = try OutputNaming(pattern: name) } catch { throw ValidationError("\(error)") }
        if let planes { _ = try parsePlanes(planes) }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if uncertainty != nil {
            let planeCount = try planes.map { Set(try parsePlanes($0)).count } ?? 1
            if model.count * planeCount * (mirrorAverage ? 2 : 1) < 2 {
                throw ValidationError("--uncertainty needs more than one prediction to compare: give several --model, "
                                      + "several --planes or --mirror-average")
            }
        }
        if let volume, volume < 0 { throw ValidationError("--volume must be 0 or more") }
        if maxVoxels < 1 { throw ValidationError("--max-voxels must be at least 1") }
        if format != .dicom, uidRoot != nil || dicomTemplate != nil {
            throw ValidationError("--uid-root and --dicom-template apply to --format dicom only")
        }
        if let uidRoot { do { _ = try DICOMUIDRoot(uidRoot) } catch { throw ValidationError("\(error)") } }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    func parsePlanes(_ text: String) throws -> [SlicePlane] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard !names.isEmpty else { throw ValidationError("--planes needs at least one of axial, coronal, sagittal") }
        return try names.map { name in
            guard let plane = SlicePlane(rawValue: name) else {
                throw ValidationError("unknown plane \"\(name)\" (axial, coronal or sagittal)")
            }
            return plane
        }
    }

    func run() throws {
        if let threads { ComputeThreads.set(threads) }
        var options = ConversionOptions(outputDirectory: URL(fileURLWithPath: output).standardizedFileURL,
                                        naming: try OutputNaming(pattern: name))
        options.existing = skipExisting ? .skip : (overwrite ? .overwrite : .fail)
        options.planes = try planes.map(parsePlanes)
        options.batchSize = batchSize
        options.mirrorAverage = mirrorAverage
        options.previewDirectory = preview.map { URL(fileURLWithPath: $0).standardizedFileURL }
        options.readOptions.nonFinite = replaceNonFinite ? .replaceWithZero : .refuse
        options.masks = mask
        options.uncertainty = uncertainty
        options.strict = strict
        options.readOptions.volumeIndex = volume
        options.readOptions.maxVoxels = maxVoxels
        options.showProgress = !quiet
        options.format = format
        if format == .dicom {
            options.dicom = DICOMOutputOptions(uidRoot: try uidRoot.map { try DICOMUIDRoot($0) }, template: dicomTemplate,
                                               softwareVersion: "mr2ct \(MR2CTVersion.string)")
        }

        var standardError = StandardErrorStream()
        // Output folders first: one that cannot be written is found before any model is loaded or volume computed.
        for folder in [options.outputDirectory] + (options.previewDirectory.map { [$0] } ?? []) {
            if let problem = OutputFolder.problem(folder) {
                print("mr2ct: \(folder.path): \(problem)", to: &standardError)
                throw ExitCode.failure
            }
        }
        var models: [SyntheticCTModel] = []
        for path in model {
            do {
                let loaded = try SyntheticCTModel.load(URL(fileURLWithPath: path))
                loaded.generator.setPrecision(precision)
                models.append(loaded)
            } catch {
                print("mr2ct: \(error)", to: &standardError)
                throw ExitCode.failure
            }
        }
        if let planes = options.planes, let other = models.first(where: { planes != [$0.preprocessing.plane] }) {
            print("mr2ct: note: the model was trained on \(other.preprocessing.plane.rawValue) slices; predicting in "
                  + planes.map(\.rawValue).joined(separator: ", "), to: &standardError)
        }
        do {
            try FileManager.default.createDirectory(at: options.outputDirectory, withIntermediateDirectories: true)
        } catch {
            print("mr2ct: \(options.outputDirectory.path): cannot create the output folder", to: &standardError)
            throw ExitCode.failure
        }
        let expanded = ConversionInputs.expand(inputs)
        // A single mask or uncertainty file names one volume's companion.
        for (option, value) in [("--mask", mask), ("--uncertainty", uncertainty)] {
            guard let value, expanded.count > 1 else { continue }
            let isFile = option == "--mask" ? !Self.isDirectory(value) : UncertaintyNaming.isFile(value)
            if isFile {
                print("mr2ct: \(option) \(value) is one file but there are \(expanded.count) inputs; give a folder", to: &standardError)
                throw ExitCode(64)
            }
        }
        if !quiet, models.contains(where: { $0.trainingHistogram == nil }) {
            print("mr2ct: note: \(models.filter { $0.trainingHistogram == nil }.map(\.file.lastPathComponent).joined(separator: ", ")) "
                  + "stores no training MR histogram, so the input_unlike_training check is not made for it "
                  + "(mr2ct histogram adds one)", to: &standardError)
        }
        let (plan, leftOut) = ConversionRunner.plan(expanded, options: options)
        if let first = leftOut.first {
            print("mr2ct: note: \(leftOut.count) input(s) are outputs of other inputs under this --name and are left out "
                  + "(e.g. \(first.path))", to: &standardError)
        }
        let mine = try shard.map { try Shard(parsing: $0).select(plan) } ?? plan
        if mine.isEmpty {
            // An empty shard of a non-empty list is normal (more shards than volumes); an empty list is not.
            print("mr2ct: no input volume" + (shard.map { " in shard \($0)" } ?? ""), to: &standardError)
            if plan.isEmpty { throw ExitCode.failure }
            return
        }
        let runner = ConversionRunner(models: models, options: options)
        let results = runner.run(mine) { result in
            FileHandle.standardOutput.write(Data((result.jsonLine + "\n").utf8))
        }
        if results.contains(where: { $0.status == .error }) { throw ExitCode.failure }
    }
}

extension OutputFormat: ExpressibleByArgument {}
