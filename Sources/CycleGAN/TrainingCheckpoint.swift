import Foundation
import MR2CTSupport
import NeuralNetwork
import Preprocessing
import Safetensors

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
    /// histogram under `IntensityHistogram.metadataKey`, for conversion's input check.
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
        return metadata
    }

    /// Writes every file of a set for `gan` into `directory` (a fresh folder; `RunFolder.writeSet` makes it atomic).
    public static func write(_ gan: CycleGAN, state: TrainingState, mrHistogram: IntensityHistogram? = nil,
                             to directory: URL) throws {
        let configuration = state.configuration
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let discriminatorJSON = String(decoding: try encoder.encode(configuration.model.discriminator), as: UTF8.self)
        try gan.gA.saveSafetensors(to: directory.appendingPathComponent("G_A.safetensors"),
                                   metadata: generatorMetadata(configuration, role: "G_A", iteration: state.iteration,
                                                                     mrHistogram: mrHistogram))
        try gan.gB.saveSafetensors(to: directory.appendingPathComponent("G_B.safetensors"),
                                   metadata: generatorMetadata(configuration, role: "G_B", iteration: state.iteration,
                                                                     mrHistogram: mrHistogram))
        for (role, network) in [("D_A", gan.dA), ("D_B", gan.dB)] {
            try network.saveSafetensors(to: directory.appendingPathComponent("\(role).safetensors"),
                                        metadata: ["format": TrainingState.currentFormat, "role": role,
                                                   "iteration": String(state.iteration), "discriminator": discriminatorJSON])
        }
        try writeOptimizer(gan.optimizerG, groups: [("G_A", gan.gA), ("G_B", gan.gB)],
                           to: directory.appendingPathComponent("optimizer_G.safetensors"))
        try writeOptimizer(gan.optimizerD, groups: [("D_A", gan.dA), ("D_B", gan.dB)],
                           to: directory.appendingPathComponent("optimizer_D.safetensors"))
        try writePools(gan, to: directory.appendingPathComponent("pools.safetensors"))
        let stateEncoder = JSONEncoder()
        stateEncoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try stateEncoder.encode(state), to: directory.appendingPathComponent("state.json"))
    }

    /// Reads a set's `state.json`.
    public static func readState(_ directory: URL) throws -> TrainingState {
        let url = directory.appendingPathComponent("state.json")
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TrainingError(path: url.path, reason: "cannot read the checkpoint state (\(RunFolder.reason(error)))")
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

    /// Loads a set into `gan` (built with the same configuration) and returns its state. Throws a one-line error
    /// naming the file when a file is missing or does not match the configuration (names, shapes, counts).
    public static func load(_ directory: URL, into gan: CycleGAN, configuration: TrainingConfiguration) throws -> TrainingState {
        let state = try readState(directory)
        // The schedule's length may differ: a run extended with a larger --iterations (TrainingSession checks it
        // against config.json); everything else must match.
        let differences = state.configuration.differences(from: configuration).filter { !$0.hasPrefix("length.") }
        guard differences.isEmpty else {
            throw TrainingError(path: directory.appendingPathComponent("state.json").path,
                                reason: "the checkpoint was made with another configuration (\(differences.prefix(3).joined(separator: "; ")))")
        }
        for (role, network) in [("G_A", gan.gA as ParameterContainer), ("G_B", gan.gB), ("D_A", gan.dA), ("D_B", gan.dB)] {
            let url = directory.appendingPathComponent("\(role).safetensors")
            let metadata = try network.loadSafetensors(from: url)
            if let saved = metadata["iteration"], saved != String(state.iteration) {
                throw TrainingError(path: url.path, reason: "holds iteration \(saved), but state.json says \(state.iteration)")
            }
        }
        try readOptimizer(gan.optimizerG, groups: [("G_A", gan.gA), ("G_B", gan.gB)],
                          from: directory.appendingPathComponent("optimizer_G.safetensors"))
        try readOptimizer(gan.optimizerD, groups: [("D_A", gan.dA), ("D_B", gan.dB)],
                          from: directory.appendingPathComponent("optimizer_D.safetensors"))
        try readPools(gan, from: directory.appendingPathComponent("pools.safetensors"))
        gan.learningRate = state.learningRate
        return state
    }

    // MARK: Optimiser state

    /// Adam's first and second moments per parameter, named `<network>.<parameter>.exp_avg` / `.exp_avg_sq`
    /// (PyTorch's state names), with the step count in the metadata.
    static func writeOptimizer(_ adam: Adam, groups: [(String, ParameterContainer)], to url: URL) throws {
        let names = groups.flatMap { group in group.1.parameters.map { "\(group.0).\($0.name)" } }
        let moments = adam.moments
        guard moments.count == names.count else {
            throw TrainingError(path: url.path, reason: "optimiser holds \(moments.count) parameters, the networks \(names.count)")
        }
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        tensors.reserveCapacity(2 * names.count)
        for (name, moment) in zip(names, moments) {
            tensors.append((name + ".exp_avg", moment.first.shape, moment.first.toArray()))
            tensors.append((name + ".exp_avg_sq", moment.second.shape, moment.second.toArray()))
        }
        try SafetensorsFile.write(tensors, metadata: ["format": TrainingState.currentFormat,
                                                      "step": String(adam.stepCount)], to: url)
    }

    static func readOptimizer(_ adam: Adam, groups: [(String, ParameterContainer)], from url: URL) throws {
        let archive = try SafetensorsFile.read(url)
        let names = groups.flatMap { group in group.1.parameters.map { "\(group.0).\($0.name)" } }
        let moments = adam.moments
        guard moments.count == names.count, archive.tensors.count == 2 * names.count else {
            throw TrainingError(path: url.path, reason: "holds \(archive.tensors.count) tensors, the optimiser needs \(2 * names.count)")
        }
        guard let stepText = archive.metadata["step"], let step = Int(stepText), step >= 0 else {
            throw TrainingError(path: url.path, reason: "no valid \"step\" in the metadata")
        }
        for (name, moment) in zip(names, moments) {
            for (suffix, tensor) in [(".exp_avg", moment.first), (".exp_avg_sq", moment.second)] {
                guard let info = archive.info(named: name + suffix) else {
                    throw TrainingError(path: url.path, reason: "no tensor \"\(name + suffix)\"")
                }
                guard info.shape == tensor.shape else {
                    throw TrainingError(path: url.path, reason: "tensor \"\(name + suffix)\" has shape \(info.shape), expected \(tensor.shape)")
                }
                try archive.copyFloats(named: name + suffix, into: tensor.data)
            }
        }
        adam.stepCount = step
    }

    // MARK: Image pools

    /// The pools' images (`pool_A.0`, …, each of the pool's image shape) with each pool's generator state in the
    /// metadata.
    static func writePools(_ gan: CycleGAN, to url: URL) throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        var metadata = ["format": TrainingState.currentFormat]
        for (label, pool) in [("A", gan.poolA), ("B", gan.poolB)] {
            for (index, image) in pool.images.enumerated() {
                tensors.append(("pool_\(label).\(index)", pool.imageShape, image))
            }
            metadata["pool_\(label).count"] = String(pool.images.count)
            metadata["pool_\(label).random"] = pool.random.state.map(String.init).joined(separator: ",")
        }
        try SafetensorsFile.write(tensors, metadata: metadata, to: url)
    }

    static func readPools(_ gan: CycleGAN, from url: URL) throws {
        let archive = try SafetensorsFile.read(url)
        for label in ["A", "B"] {
            let capacity = label == "A" ? gan.poolA.capacity : gan.poolB.capacity
            guard let countText = archive.metadata["pool_\(label).count"], let count = Int(countText),
                  count >= 0, count <= max(capacity, 0) else {
                throw TrainingError(path: url.path, reason: "no valid image count for pool \(label) (capacity \(capacity))")
            }
            let words = archive.metadata["pool_\(label).random"]?.split(separator: ",").compactMap { UInt64($0) } ?? []
            guard words.count == 4 else {
                throw TrainingError(path: url.path, reason: "no valid generator state for pool \(label)")
            }
            var images: [[Float]] = []
            var shape: [Int] = []
            for index in 0..<count {
                let name = "pool_\(label).\(index)"
                guard archive.info(named: name) != nil else {
                    throw TrainingError(path: url.path, reason: "no tensor \"\(name)\"")
                }
                let tensor = try archive.tensor(named: name)
                guard index == 0 || tensor.shape == shape else {
                    throw TrainingError(path: url.path, reason: "tensor \"\(name)\" has shape \(tensor.shape), not \(shape)")
                }
                shape = tensor.shape
                images.append(tensor.values)
            }
            var random = SeededRandom(seed: 0)
            random.state = words
            let pool = ImagePool(capacity: capacity, images: images, imageShape: shape, random: random)
            if label == "A" { gan.poolA = pool } else { gan.poolB = pool }
        }
    }
}
