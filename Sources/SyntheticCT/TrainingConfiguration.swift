import CycleGAN
import Foundation
import MR2CTSupport
import NeuralNetwork
import Preprocessing

/// A training run's configuration. Everything but `options` defines the run's result: with the same configuration
/// and the same data, a run gives the same losses iteration for iteration, whether or not it was interrupted.
/// Stored as the run folder's `config.json` and in every checkpoint's `state.json`; a resumed run must give the
/// same one.
public struct TrainingConfiguration: Codable, Sendable, Hashable {
    /// The layout version of run folders written by this version.
    public static let currentFormat = "mr2ct-run-1"

    public var format: String = TrainingConfiguration.currentFormat
    /// The preset the run started from (`--preset`), nil for runs made without one (or by earlier versions).
    public var preset: TrainingPreset? = nil
    /// How volumes become network slices (stored with every generator so conversion prepares MR the same way).
    public var preprocessing = PreprocessingConfiguration()
    /// Architectures, adversarial loss, loss weights, pool size and optimiser settings.
    public var model = CycleGANConfiguration()
    /// How long to train: epochs at the initial rate then decay epochs, or a number of iterations.
    public var length = TrainingLength.epochs(100, decay: 100)
    /// Seeds the weights, the slice order and the image pools.
    public var seed: UInt64 = 0
    /// Random flips of training slices (the reference's default `no_flip = False` flips horizontally).
    public var augment = false
    /// Train on random square windows of this side cut from each slice (the reference's `--preprocess crop`);
    /// nil trains on whole slices. The generator is fully convolutional, so conversion runs on whole slices.
    public var cropSize: Int? = nil
    /// Slices per iteration on each process (`--batch-size`); nil is 1, as in runs made before the option existed
    /// (and the key is then absent from config.json, which stays as it was). Under data-parallel training each of
    /// the N ranks takes this many, so an iteration trains on N × batchSize slices.
    public var batchSize: Int? = nil
    /// The training data: names of the MR and CT files used and the epoch length (checked on resume).
    public var data = TrainingData()
    /// Settings that do not change the result (folders, checkpoint and picture intervals, validation): they may
    /// differ between the sessions of one run and are not compared.
    public var options = TrainingOptions()

    public init() {}

    /// Slices per iteration and process (1 unless `--batch-size` said otherwise).
    public var slicesPerIteration: Int { batchSize ?? 1 }

    /// The largest batch per process: each slice of a batch holds the networks' activations at once.
    public static let batchSizeRange = 1...256

    /// The largest image pool (the reference: 50); each pooled fake is a slice of memory.
    public static let poolSizeRange = 0...1000

    /// Checks every size this configuration derives an allocation from against its documented limit (slice size,
    /// target spacing, channels, filters, blocks, layers, pool), before anything is allocated; one line naming
    /// the setting. The tool (`train`), `TrainingSession` and model loading call the same checks.
    public func validate() throws {
        func fail(_ reason: String) -> TrainingError { TrainingError(path: "training configuration", reason: reason) }
        do { try preprocessing.validate() } catch let error as PreprocessingError { throw fail(error.reason) }
        do {
            try model.generator.validate()
            try model.discriminator.validate()
        } catch { throw fail("\(error)") }
        if let batchSize, !Self.batchSizeRange.contains(batchSize) {
            throw fail("batch size is \(batchSize), outside \(Self.batchSizeRange.lowerBound)…\(Self.batchSizeRange.upperBound)")
        }
        guard Self.poolSizeRange.contains(model.poolSize) else {
            throw fail("pool size is \(model.poolSize), outside 0…\(Self.poolSizeRange.upperBound)")
        }
        // Semi-supervised training: both pair folders or neither, and a supervision weight exactly when they are given.
        let pairedMR = options.pairedMRDirectory != nil, pairedCT = options.pairedCTDirectory != nil
        guard pairedMR == pairedCT else {
            throw fail(pairedMR ? "--paired-mr needs --paired-ct (the registered CTs of the pairs)"
                                : "--paired-ct needs --paired-mr (the registered MRs of the pairs)")
        }
        if let supervision = model.supervised {
            guard supervision.lambda.isFinite, supervision.lambda >= 0 else {
                throw fail("--lambda-supervised must be a number ≥ 0, not \(supervision.lambda)")
            }
        }
        if pairedMR, model.supervised == nil {
            throw fail("--paired-mr and --paired-ct need the supervised term's weight (--lambda-supervised)")
        }
        if !pairedMR, model.supervised != nil {
            throw fail("--lambda-supervised and --l1-in-body need --paired-mr and --paired-ct (semi-supervised training)")
        }
    }

    /// Whether this is a semi-supervised run (the CycleGAN losses on all data plus a supervised term on pairs).
    public var isSemiSupervised: Bool { model.supervised != nil }

    /// The preprocessing settings whose input channels the generator's must match.
    public mutating func synchroniseChannels() {
        model.generator.inputChannels = preprocessing.contextSlices
        model.generator.outputChannels = 1
        model.discriminator.inputChannels = 1
    }

    /// The fields of `other` that differ from this configuration, as `"path: this ≠ other"` strings
    /// (paths in the JSON, e.g. `model.generator.ngf: 8 ≠ 16`). Empty when they are the same.
    public func differences(from other: TrainingConfiguration) -> [String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let a = try? JSONSerialization.jsonObject(with: encoder.encode(self)),
              let b = try? JSONSerialization.jsonObject(with: encoder.encode(other)) else { return ["configuration"] }
        var out: [String] = []
        Self.compare(a, b, path: "", into: &out)
        return out.filter { !$0.hasPrefix("options.") }
    }

    private static func compare(_ a: Any, _ b: Any, path: String, into out: inout [String]) {
        if let a = a as? [String: Any], let b = b as? [String: Any] {
            for key in Set(a.keys).union(b.keys).sorted() {
                let sub = path.isEmpty ? key : path + "." + key
                switch (a[key], b[key]) {
                case let (x?, y?): compare(x, y, path: sub, into: &out)
                case let (x?, nil): out.append("\(sub): \(render(x)) ≠ (none)")
                case let (nil, y?): out.append("\(sub): (none) ≠ \(render(y))")
                default: break
                }
            }
        } else if render(a) != render(b) {
            out.append("\(path): \(render(a)) ≠ \(render(b))")
        }
    }

    private static func render(_ value: Any) -> String {
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }

    /// The configuration as pretty, sorted JSON (the run folder's `config.json`).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Reads a configuration written by `jsonData()`.
    public static func read(_ url: URL) throws -> TrainingConfiguration {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TrainingError(path: url.path, reason: "cannot read the run configuration (\(TrainingError.reason(error)))")
        }
        do {
            let configuration = try JSONDecoder().decode(TrainingConfiguration.self, from: data)
            guard configuration.format == currentFormat else {
                throw TrainingError(path: url.path, reason: "run folder format \"\(configuration.format)\" is not \"\(currentFormat)\"")
            }
            return configuration
        } catch let error as TrainingError { throw error } catch {
            throw TrainingError(path: url.path, reason: "not a valid run configuration (\(error))")
        }
    }
}

/// The length of a run: the reference's epochs (`n_epochs` at the initial rate, `n_epochs_decay` decaying), or a
/// number of iterations (half constant, half decaying).
public enum TrainingLength: Codable, Sendable, Hashable, CustomStringConvertible {
    case epochs(Int, decay: Int)
    case iterations(Int)

    /// This length with the command line's choices applied: `iterations` replaces it; otherwise `epochs` and
    /// `decayEpochs` replace their own half of an epoch length (of this one, or of the default 100 + 100 when this is
    /// an iteration count); nothing given keeps it.
    public func overridden(iterations: Int?, epochs: Int?, decayEpochs: Int?) -> TrainingLength {
        if let iterations { return .iterations(iterations) }
        guard epochs != nil || decayEpochs != nil else { return self }
        var (e, d) = (100, 100)
        if case let .epochs(se, sd) = self { (e, d) = (se, sd) }
        return .epochs(epochs ?? e, decay: decayEpochs ?? d)
    }

    /// The schedule for an epoch of `epochLength` iterations.
    public func schedule(epochLength: Int) -> TrainingSchedule {
        switch self {
        case let .epochs(epochs, decay): return .epochs(epochs, decayEpochs: decay, epochLength: epochLength)
        case let .iterations(count): return .iterations(count)
        }
    }

    public var description: String {
        switch self {
        case let .epochs(epochs, decay): return "\(epochs) + \(decay) decay epochs"
        case let .iterations(count): return "\(count) iterations"
        }
    }

    private enum CodingKeys: String, CodingKey { case epochs, decayEpochs, iterations }

    /// `{"epochs": 100, "decayEpochs": 100}` or `{"iterations": 5000}`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let iterations = try c.decodeIfPresent(Int.self, forKey: .iterations) {
            self = .iterations(iterations)
        } else {
            self = .epochs(try c.decode(Int.self, forKey: .epochs), decay: try c.decode(Int.self, forKey: .decayEpochs))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case let .epochs(epochs, decay):
            try c.encode(epochs, forKey: .epochs)
            try c.encode(decay, forKey: .decayEpochs)
        case let .iterations(count):
            try c.encode(count, forKey: .iterations)
        }
    }
}

/// The training data of a run: the file names found in the folders when the run began and the resulting epoch
/// length (a resumed run must find the same files, or its slice order would differ).
public struct TrainingData: Codable, Sendable, Hashable {
    public var mrFiles: [String] = []
    public var ctFiles: [String] = []
    public var epochLength = 0
    /// Semi-supervised runs: the registered pairs' MR and CT file names (matched by name; their MR also joined the
    /// MR pool, their CT the CT pool, so `epochLength` counts them) and their usable pair slices. nil (absent from
    /// the JSON) in unpaired runs.
    public var pairedMRFiles: [String]? = nil
    public var pairedCTFiles: [String]? = nil
    public var pairedSlices: Int? = nil
    public init() {}
}

/// Settings that do not change a run's result, which may differ between the sessions of one run.
public struct TrainingOptions: Codable, Sendable, Hashable {
    /// The MR and CT training folders (absolute paths).
    public var mrDirectory: String?
    public var ctDirectory: String?
    /// Semi-supervised training: the folders of registered MR/CT pairs (absolute paths).
    public var pairedMRDirectory: String?
    public var pairedCTDirectory: String?
    /// Save a checkpoint set every N iterations (and at the end, and when stopped by a signal).
    public var checkpointEvery = 500
    /// Write a picture grid and the report every N iterations.
    public var sampleEvery = 250
    /// Validate every N iterations; nil = once per epoch.
    public var validateEvery: Int?
    /// Keep the newest N checkpoint sets (plus those `latest` and `best` name); 0 keeps all.
    public var keepCheckpoints = 3
    /// Optional paired validation folders (same file names in both).
    public var validationMRDirectory: String?
    public var validationCTDirectory: String?
    /// Processes of the data-parallel job of the latest session (mpirun -n N); nil for one process. Not part of
    /// the result's definition: a run may be resumed with another N (the effective batch, N × batch size, changes).
    public var ranks: Int?

    public init() {}
}
