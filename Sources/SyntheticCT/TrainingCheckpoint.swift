import CycleGAN
import Foundation
import MR2CTSupport
import NeuralNetwork
import Preprocessing
import Safetensors
import Training

/// A semi-supervised generator's "training_data" metadata: the unpaired folders' MR and CT files, the registered
/// pairs and their usable slices.
public struct TrainingDataCounts: Codable, Sendable, Hashable {
    public var mrFiles: Int
    public var ctFiles: Int
    public var pairs: Int
    public var pairSlices: Int
}

/// The non-tensor state of a checkpoint set (`state.json`): where the run stands, so that a resumed run continues
/// exactly (the loader's pairs are a pure function of the seed and the iteration; the pools carry their own
/// generators; Adam its step count).
public struct TrainingState: Codable, Sendable, Equatable {
    public static let currentFormat = "mr2ct-checkpoint-1"
    public var format = TrainingState.currentFormat
    /// Iterations completed.
    public var iteration: Int
    /// The learning rate of the last completed iteration.
    public var learningRate: Float
    /// The lowest validation MAE so far (HU) and the iteration it was measured at.
    public var bestValidationMAE: Double?
    public var bestIteration: Int?
    /// Wall-clock seconds spent training, over all sessions.
    public var trainingSeconds: Double
    /// The run's configuration (identity part compared on load).
    public var configuration: TrainingConfiguration

    public init(iteration: Int, learningRate: Float, bestValidationMAE: Double?, bestIteration: Int?,
                trainingSeconds: Double, configuration: TrainingConfiguration) {
        self.iteration = iteration
        self.learningRate = learningRate
        self.bestValidationMAE = bestValidationMAE
        self.bestIteration = bestIteration
        self.trainingSeconds = trainingSeconds
        self.configuration = configuration
    }
}

/// A checkpoint set's files: the four networks (PyTorch state_dict names, so generators move between this tool
/// and PyTorch), both Adam optimisers' moments and step counts, the two image pools with their generators, and
/// `state.json`. Every generator file's metadata holds the generator and preprocessing configurations and its
/// direction, so a single `G_A.safetensors` is a complete MR→CT model.
public enum TrainingCheckpoint {
    public static let files = ["G_A.safetensors", "G_B.safetensors", "D_A.safetensors", "D_B.safetensors",
                               "optimizer_G.safetensors", "optimizer_D.safetensors", "pools.safetensors", "state.json"]

    /// The metadata of a generator file; with `mrHistogram` (non-empty) the training MR's normalised body-intensity
    /// histogram under `IntensityHistogram.metadataKey`, for conversion's input check. A semi-supervised run's
    /// generators add "training": "semi-supervised", "supervision" (JSON of `CycleGANSupervision`) and
    /// "training_data" (JSON: the unpaired folders' MR and CT file counts, the pairs, their usable slices); an
    /// unpaired run's have no "training" entry.
    public static func generatorMetadata(_ configuration: TrainingConfiguration, role: String, iteration: Int,
                                         mrHistogram: IntensityHistogram? = nil) -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let generator = (try? encoder.encode(configuration.model.generator)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let preprocessing = (try? encoder.encode(configuration.preprocessing)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        var metadata = ["format": TrainingState.currentFormat, "role": role, "iteration": String(iteration),
                        "direction": role == "G_A" ? "MR->CT" : "CT->MR",
                        "generator": generator, "preprocessing": preprocessing]
        if let mrHistogram, mrHistogram.total > 0 { metadata[IntensityHistogram.metadataKey] = mrHistogram.json }
        // How it was trained: semi-supervised runs say so, with their supervision and their data's counts.
        if let supervision = configuration.model.supervised {
            let d = configuration.data
            metadata["training"] = "semi-supervised"
            metadata["supervision"] = (try? encoder.encode(supervision)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            let counts = TrainingDataCounts(mrFiles: d.mrFiles.count, ctFiles: d.ctFiles.count,
                                            pairs: d.pairedMRFiles?.count ?? 0, pairSlices: d.pairedSlices ?? 0)
            metadata["training_data"] = (try? encoder.encode(counts)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
        return metadata
    }

    /// The components of a set for `gan` in this run's format: the networks with `generatorMetadata` (G_A, G_B)
    /// or their role, iteration and discriminator configuration (D_A, D_B), optimisers and pools with the format,
    /// each network's saved iteration checked against `expectedIteration` on load.
    static func components(_ gan: CycleGANModel, configuration: TrainingConfiguration, iteration: @escaping () -> Int,
                           mrHistogram: @escaping () -> IntensityHistogram?) -> [CheckpointComponent] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let discriminatorJSON = (try? encoder.encode(configuration.model.discriminator)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return gan.checkpointComponents(networkMetadata: { role in
            switch role {
            case .gA, .gB:
                return generatorMetadata(configuration, role: role.rawValue, iteration: iteration(), mrHistogram: mrHistogram())
            case .dA, .dB:
                return ["format": TrainingState.currentFormat, "role": role.rawValue, "iteration": String(iteration()),
                        "discriminator": discriminatorJSON]
            }
        }, metadata: ["format": TrainingState.currentFormat], checkNetwork: { _, url, metadata in
            if let saved = metadata["iteration"], saved != String(iteration()) {
                throw TrainingError(path: url.path, reason: "holds iteration \(saved), but state.json says \(iteration())")
            }
        })
    }

    /// `state.json` of a set: the loop's state with the run's configuration (`TrainingState`, the format sets had
    /// before the training loop existed). Reading checks the format and that the set belongs to a run of this
    /// configuration (the schedule's length may differ: an extended run; `TrainingSession` checks it against
    /// config.json), which refuses the resume at once.
    static func stateComponent(configuration: TrainingConfiguration, get: @escaping () -> LoopState,
                               set: @escaping (LoopState) -> Void) -> CheckpointComponent {
        CheckpointComponent(file: "state.json", write: { url in
            let loop = get()
            let state = TrainingState(iteration: loop.iteration, learningRate: loop.learningRate,
                                      bestValidationMAE: loop.bestScore, bestIteration: loop.bestIteration,
                                      trainingSeconds: loop.trainingSeconds, configuration: configuration)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try AtomicFile.write(try encoder.encode(state), to: url)
        }, read: { url in
            let state = try readState(url.deletingLastPathComponent())
            let differences = state.configuration.differences(from: configuration).filter { !$0.hasPrefix("length.") }
            guard differences.isEmpty else {
                throw ConfigurationMismatch(path: url.path, differences: differences)
            }
            set(LoopState(iteration: state.iteration, learningRate: state.learningRate, bestScore: state.bestValidationMAE,
                          bestIteration: state.bestIteration, trainingSeconds: state.trainingSeconds))
        })
    }

    /// A set made with another configuration: no older set of the folder can be resumed either.
    struct ConfigurationMismatch: ResumeRefusal, CustomStringConvertible {
        var path: String
        var differences: [String]
        var description: String {
            "\(path): the checkpoint was made with another configuration (\(differences.prefix(3).joined(separator: "; ")))"
        }
    }

    /// Reads a set's `state.json`.
    public static func readState(_ directory: URL) throws -> TrainingState {
        let url = directory.appendingPathComponent("state.json")
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TrainingError(path: url.path, reason: "cannot read the checkpoint state (\(TrainingError.reason(error)))")
        }
        let state: TrainingState
        do { state = try JSONDecoder().decode(TrainingState.self, from: data) } catch {
            throw TrainingError(path: url.path, reason: "not a valid checkpoint state (\(error))")
        }
        guard state.format == TrainingState.currentFormat else {
            throw TrainingError(path: url.path, reason: "checkpoint format \"\(state.format)\" is not \"\(TrainingState.currentFormat)\"")
        }
        return state
    }

    /// Loads a set into `gan` (built with the same configuration) and returns its state, reading the files as a
    /// resumed run does. Throws a one-line error naming the file when a file is missing or does not match the
    /// configuration (names, shapes, counts).
    public static func load(_ directory: URL, into gan: CycleGANModel, configuration: TrainingConfiguration) throws -> TrainingState {
        var loop = LoopState(iteration: 0, learningRate: 0)
        try stateComponent(configuration: configuration, get: { loop }, set: { loop = $0 })
            .read(directory.appendingPathComponent("state.json"))
        for component in components(gan, configuration: configuration, iteration: { loop.iteration }, mrHistogram: { nil }) {
            try component.read(directory.appendingPathComponent(component.file))
        }
        gan.learningRate = loop.learningRate
        return try readState(directory)
    }
}

/// The CycleGAN of an MR→CT run as the training loop's model: `CycleGANModel`'s step and files, with the run's
/// metadata in every file (each G_A is a complete MR→CT model for conversion) and `state.json` in the
/// `mr2ct-checkpoint-1` format, so run folders written before the loop existed resume unchanged.
final class SyntheticCTTrainingModel: TrainableModel {
    let gan: CycleGANModel
    let configuration: TrainingConfiguration
    let mrHistogram: () -> IntensityHistogram?
    /// Iterations completed by the model's networks: the set being written (steps taken) or read (its state).
    private(set) var iteration = 0

    init(gan: CycleGANModel, configuration: TrainingConfiguration, mrHistogram: @escaping () -> IntensityHistogram?) {
        self.gan = gan
        self.configuration = configuration
        self.mrHistogram = mrHistogram
    }

    func trainStep(_ batch: CycleGANBatch, learningRate: Float) -> StepLosses<CycleGANLossKey> {
        let losses = gan.trainStep(batch, learningRate: learningRate)
        iteration += 1
        return losses
    }

    var checkpointComponents: [CheckpointComponent] {
        TrainingCheckpoint.components(gan, configuration: configuration, iteration: { [unowned self] in self.iteration },
                                      mrHistogram: mrHistogram)
    }

    func loopStateComponent(get: @escaping () -> LoopState, set: @escaping (LoopState) -> Void) -> CheckpointComponent {
        TrainingCheckpoint.stateComponent(configuration: configuration, get: get, set: { [unowned self] state in
            self.iteration = state.iteration
            self.gan.learningRate = state.learningRate
            set(state)
        })
    }

    func sampleImages() -> [[SampleImage<CycleGANImageKey>]] { gan.sampleImages() }

    var optimizers: [Adam] { gan.optimizers }

    func releaseStepBuffers() { gan.releaseStepBuffers() }
}
