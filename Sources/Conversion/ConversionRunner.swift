import Foundation
import CycleGAN
import SyntheticCT
import DICOM
import MR2CTSupport
import NIfTI
import VolumeIO
import Preprocessing
import Reporting

/// What to do when an output file already exists.
public enum ExistingOutputPolicy: String, Sendable {
    /// Report the volume as failed and leave the file alone (the default: never overwrite silently).
    case fail
    /// Report the volume as skipped and leave the file alone (`--skip-existing`, for re-running a batch).
    case skip
    /// Replace the file (`--overwrite`).
    case overwrite
}

/// Options of a conversion batch.
public struct ConversionOptions: Sendable {
    public var outputDirectory: URL
    public var naming: OutputNaming
    public var existing: ExistingOutputPolicy = .fail
    /// Planes to predict in and average; nil = the model's training plane.
    public var planes: [SlicePlane]? = nil
    /// Slices per generator call.
    public var batchSize: Int = 4
    /// Average each slice's prediction with that of its left–right mirror image (twice the compute).
    public var mirrorAverage = false
    /// Where to write a PNG of the central axial slice, MR | sCT, with the QA verdict, per volume; nil = none.
    public var previewDirectory: URL? = nil
    /// The user's body masks (`--mask`): a mask volume for a single input, or a folder whose files are matched to
    /// the inputs by name (as `evaluate` matches masks); nil = `BodyMask.compute` of each MR.
    public var masks: String? = nil
    /// Where to write the per-voxel standard deviation (HU) of the predictions: a `.nii`/`.nii.gz` file for a
    /// single input, or a folder (`<output stem>_sd.nii.gz`); nil = none. Needs more than one prediction.
    public var uncertainty: String? = nil
    /// Any QA warning makes the volume an error (and its outputs are not written).
    public var strict = false
    public var readOptions = NIfTIReadOptions()
    /// Progress on standard error (`convert --quiet` turns it off).
    public var showProgress = true
    /// NIfTI files (default) or DICOM CT series folders (`--format dicom`, named as the NIfTI files would be,
    /// without .nii/.nii.gz).
    public var format: OutputFormat = .nifti
    /// Settings of `--format dicom`.
    public var dicom: DICOMOutputOptions? = nil

    public init(outputDirectory: URL, naming: OutputNaming = .standard) {
        self.outputDirectory = outputDirectory
        self.naming = naming
    }
}

/// The outcome for one input: the fields of its JSON line.
public struct ConversionResult: Sendable, Hashable {
    public enum Status: String, Sendable { case ok, skipped, error }
    public var input: String
    public var output: String?
    public var seconds: Double
    public var status: Status
    public var error: String?
    public var preview: String?
    /// The uncertainty map written, if any.
    public var uncertainty: String? = nil
    /// The QA verdict, when the volume was converted (also with `--strict` when it made the volume an error).
    public var qa: QualityCheck? = nil

    /// One JSON object on one line: {"input":…,"output":…,"seconds":…,"status":…,"error":…} (+ "preview" and
    /// "uncertainty" when written, "qa" when the volume was converted: `QualityCheck.json`). `output` and `error`
    /// are null when absent.
    public var jsonLine: String {
        var fields = [("input", JSONText.string(input)),
                      ("output", output.map(JSONText.string) ?? "null"),
                      ("seconds", JSONText.number(seconds, digits: 3)),
                      ("status", JSONText.string(status.rawValue)),
                      ("error", error.map(JSONText.string) ?? "null")]
        if let preview { fields.append(("preview", JSONText.string(preview))) }
        if let uncertainty { fields.append(("uncertainty", JSONText.string(uncertainty))) }
        if let qa { fields.append(("qa", qa.json)) }
        return JSONText.object(fields)
    }
}

/// A planned conversion: an input, its output path, and any problem known before converting.
public struct PlannedConversion: Sendable, Hashable {
    public var input: ConversionItem
    public var output: URL?
    public var problem: String?
    /// The user's body mask for this input (`--mask`); nil = the automatic body mask.
    public var mask: URL? = nil
    /// Where its uncertainty map goes (`--uncertainty`); nil = none.
    public var uncertainty: URL? = nil
}

/// A synthetic CT with what conversion knows about it.
public struct Translation {
    /// The synthetic CT (HU) on the MR's grid, air outside the body mask.
    public var syntheticCT: Volume
    /// The body mask used (the user's or `BodyMask.compute`).
    public var bodyMask: [Bool]
    /// Voxels every prediction covered; nil when every voxel was (whole-slice conversion).
    public var covered: [Bool]?
    /// Number of predictions averaged (models × planes × mirror images).
    public var predictions: Int
    /// Per-voxel standard deviation of the predictions (HU) inside the body, 0 outside; nil unless asked for.
    public var standardDeviation: [Float]?
}

/// Converts a list of MR volumes with one model or an ensemble, each volume independently: a bad file is reported
/// and the others are still converted. Every output is written to a temporary file beside it and renamed
/// (NIfTIFile.write), so an interrupted run never leaves a partial output under its final name.
public final class ConversionRunner {
    /// The models; with several, their synthetic CTs are averaged in HU (an ensemble).
    public let models: [SyntheticCTModel]
    public let options: ConversionOptions

    /// The models as the QA check sees them (named by file).
    let modelFacts: [QualityCheck.ModelFacts]

    public init(models: [SyntheticCTModel], options: ConversionOptions) {
        precondition(!models.isEmpty, "a conversion needs a model")
        self.models = models
        self.options = options
        modelFacts = models.map {
            QualityCheck.ModelFacts(name: $0.file.lastPathComponent, preprocessing: $0.preprocessing, histogram: $0.trainingHistogram)
        }
    }

    public convenience init(model: SyntheticCTModel, options: ConversionOptions) {
        self.init(models: [model], options: options)
    }

    /// The synthetic CT of `mr`: each model's translation (with its own preprocessing), averaged in HU over the
    /// models. All lie on the MR's grid with air outside the same body mask, so the average does too.
    /// `progress(done, total)` counts slices over all models.
    public static func translate(_ mr: Volume, with models: [SyntheticCTModel], options: ConversionOptions,
                                 progress: ((Int, Int) -> Void)? = nil) throws -> Volume {
        try translation(of: mr, with: models, options: options, progress: progress).syntheticCT
    }

    /// The number of predictions a conversion averages: models × planes × (2 with mirror averaging). An
    /// uncertainty map needs at least two.
    public static func predictionCount(models: [SyntheticCTModel], options: ConversionOptions) -> Int {
        models.map { $0.translator.planes(options.planes).count }.reduce(0, +)
            * VolumeTranslator.predictionsPerPlane(mirrorAverage: options.mirrorAverage)
    }

    /// `translate` with the body mask (`bodyMask`, default `BodyMask.compute(mr)`), the coverage and, with
    /// `spread`, the per-voxel standard deviation over every prediction (each model, plane and mirror image).
    public static func translation(of mr: Volume, with models: [SyntheticCTModel], options: ConversionOptions,
                                   bodyMask: [Bool]? = nil, spread: Bool = false,
                                   progress: ((Int, Int) -> Void)? = nil) throws -> Translation {
        guard !models.isEmpty else { throw TranslationError("no model given") }
        let mask = bodyMask ?? BodyMask.compute(mr)
        let stack = PredictionStack(count: mr.grid.count, keepsSpread: spread)
        var covered: [Bool]?
        for (k, model) in models.enumerated() {
            let seen = try model.translator.predict(mr, bodyMask: mask, planes: options.planes, batchSize: options.batchSize,
                                                   mirrorAverage: options.mirrorAverage, into: stack,
                                                   progress: progress.map { report in
                                                       { done, total in report(k * total + done, models.count * total) }
                                                   })
            if let seen {
                if covered == nil { covered = seen } else { for i in seen.indices where !seen[i] { covered![i] = false } }
            }
        }
        var sd = stack.standardDeviation
        if sd != nil {
            sd!.withUnsafeMutableBufferPointer { d in
                mask.withUnsafeBufferPointer { m in for i in 0..<d.count where !m[i] { d[i] = 0 } }
            }
        }
        return Translation(syntheticCT: VolumeTranslator.syntheticCT(like: mr, values: stack.takeMean(), bodyMask: mask),
                           bodyMask: mask, covered: covered, predictions: stack.members, standardDeviation: sd)
    }

    /// The user's mask for `mr` (`mrPath`): voxels > 0 are inside. It must lie on the MR's exact grid (size and
    /// affine, as `evaluate` compares grids) and hold at least one voxel.
    public static func readMask(_ url: URL, for mr: Volume, mrPath: String, options: NIfTIReadOptions) throws -> [Bool] {
        let volume: Volume
        do { volume = try VolumeSource.read(url, options: options) } catch {
            throw ConversionError.mask(url.path, reason: "cannot be read: " + reason(of: error, path: url.path))
        }
        if volume.grid != mr.grid {
            throw ConversionError.mask(url.path, reason: "is not on the grid of \(mrPath): its size is \(volume.grid), the MR's \(mr.grid)")
        }
        if !EvaluationRunner.sameGrid(volume, mr) {
            var worst = 0.0
            for r in 0..<3 { for c in 0..<4 { worst = max(worst, abs(volume.affine[r, c] - mr.affine[r, c])) } }
            throw ConversionError.mask(url.path, reason: "is not on the grid of \(mrPath): same size \(mr.grid) but its "
                                       + String(format: "voxel-to-world affine differs by up to %.4g mm", worst))
        }
        let mask = volume.voxels.map { $0 > 0 }
        guard mask.contains(true) else { throw ConversionError.mask(url.path, reason: "holds no voxel > 0 (an empty mask)") }
        return mask
    }

    /// Output paths for the whole (unsharded) list, with the problems known in advance: inputs that could not
    /// be expanded, two inputs naming the same output (the first in sorted order keeps it), an output that
    /// would replace its own input. Inputs that are themselves the output of another input (a folder converted
    /// into itself and converted again: `x_sct.nii.gz` beside `x.nii.gz`) are left out and returned in
    /// `leftOut`, so that no `x_sct_sct` appears. Run on the full list before sharding, so that every shard agrees.
    public static func plan(_ items: [ConversionItem], options: ConversionOptions)
        -> (plan: [PlannedConversion], leftOut: [ConversionItem]) {
        func output(_ item: ConversionItem) -> URL {
            var name = options.naming.name(for: item.url)
            if options.format == .dicom {
                for suffix in [".nii.gz", ".nii"] where name.lowercased().hasSuffix(suffix) { name = String(name.dropLast(suffix.count)); break }
            }
            return options.outputDirectory.appendingPathComponent(name).standardizedFileURL
        }
        let outputs = Set(items.filter { $0.problem == nil }.map { output($0).path })
        let leftOut = items.filter { $0.problem == nil && outputs.contains($0.path) && output($0).path != $0.path }
        let excluded = Set(leftOut.map(\.path))
        var owner: [String: String] = [:]
        let kept = items.filter { !excluded.contains($0.path) }
        // The user's masks, matched to the inputs by stem (the one file when --mask names a file).
        var masks: EvaluationMatching.Companions?
        var maskProblem: String?
        if let path = options.masks {
            do {
                masks = try EvaluationMatching.Companions(path: path, kind: "mask",
                                                          referenceStems: kept.map { VolumeSource.stem(of: $0.url) })
            } catch { maskProblem = "--mask: \(error)" }
        }
        let plan = kept.map { item in
            if let problem = item.problem { return PlannedConversion(input: item, output: nil, problem: problem) }
            let output = output(item)
            if output.path == item.path {
                return PlannedConversion(input: item, output: output, problem: "the output name would replace the input itself")
            }
            if let first = owner[output.path] {
                return PlannedConversion(input: item, output: output,
                                         problem: "output \(output.lastPathComponent) is already the output of \(first) (same stem)")
            }
            owner[output.path] = item.path
            var planned = PlannedConversion(input: item, output: output, problem: maskProblem)
            if let masks {
                do { planned.mask = try masks.file(for: item.url) } catch { planned.problem = "\(error)" }
            }
            if let target = options.uncertainty {
                planned.uncertainty = UncertaintyNaming.file(target, output: output)
            }
            return planned
        }
        return (plan, leftOut)
    }

    /// Converts `plan` in order, calling `report` with each result as soon as it is known; returns all results.
    public func run(_ plan: [PlannedConversion], report: (ConversionResult) -> Void) -> [ConversionResult] {
        let progress = ProgressReporter(label: "convert", total: plan.count, unit: "vol",
                                        style: options.showProgress ? .automatic : .silent)
        var results: [ConversionResult] = []
        for (n, planned) in plan.enumerated() {
            let name = planned.input.url.lastPathComponent
            progress.update(completed: n, detail: name)
            let result = convert(planned) { done, total in
                progress.update(completed: n, detail: "\(name): slice \(done)/\(total)")
            }
            results.append(result)
            if let error = result.error {
                var standardError = StandardErrorStream()
                print("mr2ct: \(error)", to: &standardError)
            }
            report(result)
        }
        let failed = results.filter { $0.status == .error }.count
        let skipped = results.filter { $0.status == .skipped }.count
        progress.update(completed: results.count)
        progress.finish(detail: "\(results.count - failed - skipped) converted, \(skipped) skipped, \(failed) failed")
        return results
    }

    /// Converts one planned input.
    public func convert(_ planned: PlannedConversion, progress: ((Int, Int) -> Void)? = nil) -> ConversionResult {
        let start = Date()
        let input = planned.input.path
        func result(_ status: ConversionResult.Status, _ error: String? = nil, preview: String? = nil,
                    uncertainty: String? = nil, qa: QualityCheck? = nil) -> ConversionResult {
            // The error names its file, "<input>: <reason>", in the JSON line as on stderr.
            ConversionResult(input: input, output: planned.output?.path, seconds: Date().timeIntervalSince(start),
                             status: status, error: error.map { "\(input): \($0)" }, preview: preview,
                             uncertainty: uncertainty, qa: qa)
        }
        if let problem = planned.problem { return result(.error, problem) }
        guard let output = planned.output else { return result(.error, "no output path") }
        if FileManager.default.fileExists(atPath: output.path) {
            switch options.existing {
            case .skip: return result(.skipped)
            case .fail: return result(.error, "output \(output.path) exists (use --skip-existing or --overwrite)")
            case .overwrite: break
            }
        }
        if let sd = planned.uncertainty, options.existing != .overwrite, FileManager.default.fileExists(atPath: sd.path) {
            return result(.error, "uncertainty output \(sd.path) exists (use --overwrite)")
        }
        var qa: QualityCheck?
        do {
            // --format dicom: the source series first (a NIfTI input without --dicom-template is refused before
            // any work), and the MR from it when the input is that series.
            let source = options.format == .dicom ? try Self.dicomSource(for: planned.input.url, options: options) : nil
            let mr: Volume
            if let source, source.location == DICOMSeriesLocation(path: planned.input.url.path) {
                mr = try source.readVolume(maxVoxels: options.readOptions.maxVoxels)
            } else {
                mr = try VolumeSource.read(planned.input.url, options: options.readOptions)
                if let source { try Self.checkTemplate(source, matches: mr, input: planned.input.url) }
            }
            let mask = try planned.mask.map { try Self.readMask($0, for: mr, mrPath: input, options: options.readOptions) }
            let translation = try Self.translation(of: mr, with: models, options: options, bodyMask: mask,
                                                   spread: planned.uncertainty != nil, progress: progress)
            // What the networks keep between calls (at 256², ngf 64 about 140 MB: activation arenas, Winograd
            // workspaces, the transposed convolutions' columns) is freed before the QA, preview and write, which
            // need the volumes only, so that the written file's buffer does not add to the peak: whole-volume f32
            // peak RSS 403 → 384 MB (256 × 256 × 150, `compare.sh --volume`, 2026-12-03, together with the pooled
            // oneDNN buffers of CDNNL). The next file builds them again.
            for model in models { model.generator.releaseInferenceBuffers() }
            let sct = translation.syntheticCT
            let check = QualityCheck.assess(mr: mr, syntheticCT: sct, bodyMask: translation.bodyMask,
                                            covered: translation.covered, models: modelFacts, planes: options.planes)
            qa = check
            var previewPath: String?
            if let folder = options.previewDirectory {
                let png = folder.appendingPathComponent(NIfTIFile.stem(of: output) + ".png")
                try ConversionPreview.write(mr: mr, syntheticCT: sct, qa: check, to: png)
                previewPath = png.path
            }
            if options.strict, !check.warnings.isEmpty {
                return result(.error, "QA warnings (--strict): " + check.warnings.map { "\($0.code): \($0.message)" }.joined(separator: "; "),
                              preview: previewPath, qa: check)
            }
            Self.removeStaleTemporaryFiles(for: output)
            if let source {
                try Self.writeDICOM(sct, source: source, to: output, options: options, models: modelFacts.map(\.name))
            } else {
                try NIfTIFile.write(sct, to: output, as: .int16)
            }
            var uncertaintyPath: String?
            if let target = planned.uncertainty, let sd = translation.standardDeviation {
                let map = VolumeTranslator.derived(from: mr, voxels: sd,
                                                   description: "mr2ct sCT SD over \(translation.predictions) predictions (HU)")
                try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                Self.removeStaleTemporaryFiles(for: target)
                try NIfTIFile.write(map, to: target, as: .float32)
                uncertaintyPath = target.path
            }
            return result(.ok, preview: previewPath, uncertainty: uncertaintyPath, qa: check)
        } catch {
            return result(.error, Self.reason(of: error, path: input), qa: qa)
        }
    }

    /// An error's description without a leading "<path>: " that only repeats the input.
    static func reason(of error: any Error, path: String) -> String {
        let text = "\(error)"
        return text.hasPrefix(path + ": ") ? String(text.dropFirst(path.count + 2)) : text
    }

    /// Removes temporary files that an earlier process, killed while writing `output`, left beside it
    /// (AtomicFile names them `.tmp-<pid>-<n>-<name>`); files of a process that is still running are kept.
    public static func removeStaleTemporaryFiles(for output: URL) {
        let folder = output.deletingLastPathComponent()
        let name = output.lastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for candidate in names where candidate.hasPrefix(".tmp-") && candidate.hasSuffix("-" + name) {
            let fields = candidate.dropFirst(5).split(separator: "-", maxSplits: 2)
            guard fields.count == 3, let pid = Int32(fields[0]), fields[2] == name[...] else { continue }
            if pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                // A file, or a DICOM series folder (--format dicom).
                try? FileManager.default.removeItem(atPath: folder.appendingPathComponent(candidate).path)
            }
        }
    }
}

/// Where `--uncertainty` writes: the named file itself when it ends in .nii/.nii.gz, else `<output stem>_sd.nii.gz`
/// in that folder.
public enum UncertaintyNaming {
    public static func isFile(_ target: String) -> Bool {
        let lower = target.lowercased()
        return lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz")
    }

    public static func file(_ target: String, output: URL) -> URL {
        let url = URL(fileURLWithPath: target).standardizedFileURL
        return isFile(target) ? url : url.appendingPathComponent(NIfTIFile.stem(of: output) + "_sd.nii.gz")
    }
}

/// A conversion input that cannot be used as given.
public enum ConversionError: Error, CustomStringConvertible, Sendable {
    /// The user's mask `path` cannot be used for this MR.
    case mask(String, reason: String)

    public var description: String {
        switch self {
        case let .mask(path, reason): "mask \(path) \(reason)"
        }
    }
}

/// The NDJSON literals of the conversion and evaluation lines.
enum JSONText {
    static func string(_ s: String) -> String { JSONLiteral.string(s) }
    static func number(_ x: Double, digits: Int = 6) -> String { JSONLiteral.number(x, fractionDigits: digits) }
    /// An object of already-encoded values, keys in the given order.
    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(string($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }
    /// An array of already-encoded values.
    static func array(_ values: [String]) -> String { "[" + values.joined(separator: ",") + "]" }
}
