import Foundation
import NeuralNetwork
import Reporting

/// A typed name: loss keys and image keys of a model are enums with string raw values (the names written in the
/// log and shown in grids); `allCases` gives the order they are written in.
public protocol TrainingKey: RawRepresentable, CaseIterable, Hashable, Sendable where RawValue == String {}

/// One training step's losses under the model's typed keys, in the keys' declared order.
public struct StepLosses<Key: TrainingKey>: Sendable {
    public var values: [Key: Float]

    public init(_ values: [Key: Float]) { self.values = values }

    public subscript(_ key: Key) -> Float? { values[key] }

    /// (name, value) pairs in `Key.allCases` order (the log's order).
    public var named: [(name: String, value: Float)] {
        Key.allCases.compactMap { key in values[key].map { (key.rawValue, $0) } }
    }

    /// The first value that is NaN or infinite, if any.
    public var firstNonFinite: (name: String, value: Float)? { named.first { !$0.value.isFinite } }
}

/// One picture of a model's state for the run's grids: an image plane (H × W values), its display window and label.
public struct SampleImage<Key: TrainingKey>: Sendable {
    public var key: Key
    /// One grid cell's label (e.g. "class 2").
    public var label: String?
    public var width: Int
    public var height: Int
    public var pixels: [Float]
    /// The values shown black to white (the generators' tanh range by default).
    public var window: IntensityWindow

    public init(key: Key, label: String? = nil, width: Int, height: Int, pixels: [Float], window: IntensityWindow = .normalized) {
        self.key = key
        self.window = window
        self.label = label
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// A model the training loop can train: any GAN family (CycleGAN, DC-GAN, conditional GAN).
///
/// The loop owns the schedule, stop signals, resume, checkpoints and callbacks; the model owns its networks,
/// optimisers and the step. For an interrupted run to continue exactly, everything the step depends on must be in
/// `checkpointComponents` and the batch of an iteration must be a function of the iteration (`TrainingData`).
public protocol TrainableModel: AnyObject {
    associatedtype Batch
    associatedtype LossKey: TrainingKey
    associatedtype ImageKey: TrainingKey

    /// One training step on `batch` at `learningRate`.
    func trainStep(_ batch: Batch, learningRate: Float) -> StepLosses<LossKey>

    /// The files of a checkpoint set that hold the model's state (networks, optimisers, generators' states).
    var checkpointComponents: [CheckpointComponent] { get }

    /// Pictures of the model's current state for a grid, as rows.
    func sampleImages() -> [[SampleImage<ImageKey>]]

    /// The file of a set that holds the loop's state (read first when a set is loaded, before the model's
    /// components). The default is `state.json` holding `LoopState`; a family whose sets predate the loop (CycleGAN's
    /// `mr2ct-checkpoint-1` sets) keeps its own file format here, mapped to and from `LoopState`.
    func loopStateComponent(get: @escaping () -> LoopState, set: @escaping (LoopState) -> Void) -> CheckpointComponent

    /// Every optimiser of the step. Data-parallel training averages their gradients over the ranks before each
    /// step (`Adam.gradientReducer`) and compares their parameters' hashes; a family without any cannot train
    /// data-parallel (the default, empty, is refused under MPI).
    var optimizers: [Adam] { get }

    /// Frees what the step keeps for the next one (the networks' records of the last step, their training
    /// workspaces), called by the loop before it validates: the validation's inference then reuses that memory
    /// instead of adding to it, and the next step allocates it again. The default keeps everything.
    func releaseStepBuffers()
}

extension TrainableModel {
    public func loopStateComponent(get: @escaping () -> LoopState, set: @escaping (LoopState) -> Void) -> CheckpointComponent {
        .json("state.json", get: get, set: set)
    }

    public var optimizers: [Adam] { [] }

    public func releaseStepBuffers() {}
}

/// An error while loading a checkpoint set that ends the resume at once instead of falling back to an older set
/// (e.g. the set was made with another configuration: every older set of the folder would be too).
public protocol ResumeRefusal: Error {}

/// The training data as a pure function of the iteration (so a resumed run sees the same batches).
public protocol TrainingData {
    associatedtype Batch
    /// Iterations per epoch (for the log's epoch numbers).
    var epochLength: Int { get }
    /// The batch of 0-based iteration `iteration`.
    func batch(at iteration: Int) throws -> Batch
}

/// Validation between iterations: named values and whether the run improved (its best set is kept).
public protocol TrainingValidator {
    /// Measures the model; `improved` when it is the best so far by the validator's own criterion.
    func validate(iteration: Int) throws -> (values: [(name: String, value: Double)], score: Double)
    /// Whether `score` is better than `best` (lower is better unless overridden).
    func isBetter(_ score: Double, than best: Double) -> Bool
}

extension TrainingValidator {
    public func isBetter(_ score: Double, than best: Double) -> Bool { score < best }
}
