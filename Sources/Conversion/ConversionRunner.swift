import Foundation
import CycleGAN
import MR2CTSupport
import NIfTI
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
    /// Where to write a PNG of the central axial slice, MR | sCT, per volume; nil = none.
    public var previewDirectory: URL? = nil
    public var readOptions = NIfTIReadOptions()
    /// Progress on standard error (`convert --quiet` turns it off).
    public var showProgress = true

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

    /// One JSON object on one line: {"input":…,"output":…,"seconds":…,"status":…,"error":…} (+ "preview" when
    /// written). `output` and `error` are null when absent.
    public var jsonLine: String {
        var fields = [("input", JSONText.string(input)),
                      ("output", output.map(JSONText.string) ?? "null"),
                      ("seconds", JSONText.number(seconds, digits: 3)),
                      ("status", JSONText.string(status.rawValue)),
                      ("error", error.map(JSONText.string) ?? "null")]
        if let preview { fields.append(("preview", JSONText.string(preview))) }
        return JSONText.object(fields)
    }
}

/// A planned conversion: an input, its output path, and any problem known before converting.
public struct PlannedConversion: Sendable, Hashable {
    public var input: ConversionItem
    public var output: URL?
    public var problem: String?
}

/// Converts a list of MR volumes with one model or an ensemble, each volume independently: a bad file is reported
/// and the others are still converted. Every output is written to a temporary file beside it and renamed
/// (NIfTIFile.write), so an interrupted run never leaves a partial output under its final name.
public final class ConversionRunner {
    /// The models; with several, their synthetic CTs are averaged in HU (an ensemble).
    public let models: [SyntheticCTModel]
    public let options: ConversionOptions

    public init(models: [SyntheticCTModel], options: ConversionOptions) {
        precondition(!models.isEmpty, "a conversion needs a model")
        self.models = models
        self.options = options
    }

    public convenience init(model: SyntheticCTModel, options: ConversionOptions) {
        self.init(models: [model], options: options)
    }

    /// The synthetic CT of `mr`: each model's translation (with its own preprocessing), averaged in HU over the
    /// models. All lie on the MR's grid with air outside the same body mask, so the average does too.
    /// `progress(done, total)` counts slices over all models.
    public static func translate(_ mr: Volume, with models: [SyntheticCTModel], options: ConversionOptions,
                                 progress: ((Int, Int) -> Void)? = nil) throws -> Volume {
        func translation(_ k: Int) throws -> Volume {
            try models[k].translator.translate(mr, planes: options.planes, batchSize: options.batchSize,
                                               mirrorAverage: options.mirrorAverage,
                                               progress: progress.map { report in
                                                   { done, total in report(k * total + done, models.count * total) }
                                               })
        }
        guard !models.isEmpty else { throw TranslationError("no model given") }
        let first = try translation(0)
        if models.count == 1 { return first }
        var sum = first.voxels
        for k in 1..<models.count {
            let sct = try translation(k)
            guard sct.voxels.count == sum.count else {
                throw TranslationError("model \(k + 1) gave \(sct.voxels.count) voxels, model 1 \(sum.count)")
            }
            sct.voxels.withUnsafeBufferPointer { v in
                sum.withUnsafeMutableBufferPointer { s in for i in 0..<s.count { s[i] += v[i] } }
            }
        }
        let scale = 1 / Float(models.count)
        return first.replacingVoxels(sum.map { $0 * scale })
    }

    /// Output paths for the whole (unsharded) list, with the problems known in advance: inputs that could not
    /// be expanded, two inputs naming the same output (the first in sorted order keeps it), an output that
    /// would replace its own input. Inputs that are themselves the output of another input (a folder converted
    /// into itself and converted again: `x_sct.nii.gz` beside `x.nii.gz`) are left out and returned in
    /// `leftOut`, so that no `x_sct_sct` appears. Run on the full list before sharding, so that every shard agrees.
    public static func plan(_ items: [ConversionItem], options: ConversionOptions)
        -> (plan: [PlannedConversion], leftOut: [ConversionItem]) {
        func output(_ item: ConversionItem) -> URL {
            options.outputDirectory.appendingPathComponent(options.naming.name(for: item.url)).standardizedFileURL
        }
        let outputs = Set(items.filter { $0.problem == nil }.map { output($0).path })
        let leftOut = items.filter { $0.problem == nil && outputs.contains($0.path) && output($0).path != $0.path }
        let excluded = Set(leftOut.map(\.path))
        var owner: [String: String] = [:]
        let plan = items.filter { !excluded.contains($0.path) }.map { item in
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
            return PlannedConversion(input: item, output: output, problem: nil)
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
        func result(_ status: ConversionResult.Status, _ error: String? = nil, preview: String? = nil) -> ConversionResult {
            // The error names its file, "<input>: <reason>", in the JSON line as on stderr.
            ConversionResult(input: input, output: planned.output?.path, seconds: Date().timeIntervalSince(start),
                             status: status, error: error.map { "\(input): \($0)" }, preview: preview)
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
        do {
            let mr = try NIfTIFile.read(planned.input.url, options: options.readOptions)
            let sct = try Self.translate(mr, with: models, options: options, progress: progress)
            Self.removeStaleTemporaryFiles(for: output)
            try NIfTIFile.write(sct, to: output, as: .int16)
            var previewPath: String?
            if let folder = options.previewDirectory {
                let png = folder.appendingPathComponent(NIfTIFile.stem(of: output) + ".png")
                try ConversionPreview.write(mr: mr, syntheticCT: sct, to: png)
                previewPath = png.path
            }
            return result(.ok, preview: previewPath)
        } catch {
            return result(.error, Self.reason(of: error, path: input))
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
                unlink(folder.appendingPathComponent(candidate).path)
            }
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
