import DataParallel
import Foundation
import MR2CTSupport

/// Where the loop stands, passed to callbacks after each iteration.
public struct StepEvent: Sendable {
    /// Iterations completed, and in the run.
    public var iteration: Int
    public var totalIterations: Int
    /// The 1-based epoch of the iteration.
    public var epoch: Int
    public var learningRate: Float
    /// The step's losses in the model's key order.
    public var losses: [(name: String, value: Float)]
    public var seconds: Double
}

/// How a session of the loop ended.
public enum LoopOutcome: Sendable, Equatable {
    case completed(iteration: Int)
    case stopped(signal: Int32, iteration: Int)
}

/// What the loop tells its observers. Every method has an empty default.
public protocol TrainingCallback: AnyObject {
    func trainingDidStep(_ event: StepEvent) throws
    func trainingDidValidate(iteration: Int, values: [(name: String, value: Double)], best: Bool) throws
    /// Time for pictures (every `sampleEvery` iterations, at the end and at a stop).
    func trainingWantsSamples(iteration: Int) throws
    func trainingDidSaveCheckpoint(iteration: Int, set: String, best: Bool) throws
    func trainingDidEnd(_ outcome: LoopOutcome) throws
}

extension TrainingCallback {
    public func trainingDidStep(_ event: StepEvent) throws {}
    public func trainingDidValidate(iteration: Int, values: [(name: String, value: Double)], best: Bool) throws {}
    public func trainingWantsSamples(iteration: Int) throws {}
    public func trainingDidSaveCheckpoint(iteration: Int, set: String, best: Bool) throws {}
    public func trainingDidEnd(_ outcome: LoopOutcome) throws {}
}

/// The loop's own state, `state.json` of every checkpoint set.
public struct LoopState: Codable, Sendable, Equatable {
    public static let currentFormat = "mr2ct-training-1"
    public var format = LoopState.currentFormat
    public var iteration: Int
    public var learningRate: Float
    public var bestScore: Double?
    public var bestIteration: Int?
    public var trainingSeconds: Double

    public init(iteration: Int, learningRate: Float, bestScore: Double? = nil, bestIteration: Int? = nil, trainingSeconds: Double = 0) {
        self.iteration = iteration
        self.learningRate = learningRate
        self.bestScore = bestScore
        self.bestIteration = bestIteration
        self.trainingSeconds = trainingSeconds
    }
}

/// How often the loop saves, samples and validates.
public struct LoopOptions: Codable, Sendable, Hashable {
    public var checkpointEvery = 500
    public var sampleEvery = 250
    /// nil: once per epoch.
    public var validateEvery: Int?
    /// Newest sets kept (plus `latest` and `best`); 0 keeps all.
    public var keepCheckpoints = 3

    public init(checkpointEvery: Int = 500, sampleEvery: Int = 250, validateEvery: Int? = nil, keepCheckpoints: Int = 3) {
        self.checkpointEvery = checkpointEvery
        self.sampleEvery = sampleEvery
        self.validateEvery = validateEvery
        self.keepCheckpoints = keepCheckpoints
    }
}

/// The model-agnostic training loop: schedule, stop signals, NaN guard, resume from the newest complete checkpoint
/// set, the NDJSON log, checkpoints with `latest`/`best` links and rotation, validation, and callbacks for progress,
/// picture grids and the report.
///
/// Each iteration runs `model.trainStep(data.batch(at: i), learningRate: schedule…(i))`. Everything that step
/// depends on is in the model's checkpoint components and the data is a function of the iteration, so a run stopped
/// and resumed computes the same losses as one that was not.
public final class TrainingLoop<Model: TrainableModel, Data: TrainingData> where Data.Batch == Model.Batch {
    public let run: RunDirectory
    public let model: Model
    public let data: Data
    public let schedule: IterationSchedule
    public let initialLearningRate: Float
    public let options: LoopOptions
    public var validator: TrainingValidator?
    public var callbacks: [TrainingCallback] = []
    /// Lines for the user (what was resumed, checkpoints that could not be read).
    public var onMessage: (String) -> Void = { _ in }
    /// Whether each saved set is recorded in the log (`kind: checkpoint`); CycleGAN's logs never held such lines.
    public var logsCheckpoints = true
    /// Whether a stop by a signal asks for pictures (`trainingWantsSamples`) too; CycleGAN's runs never did.
    public var samplesAtStop = true
    /// Data-parallel training under MPI (nil: one process). Every rank runs the loop on its share of each global
    /// batch (`ShardedTrainingData`); the optimisers' gradients are averaged over the ranks, the logged losses are
    /// the ranks' mean, a stop asked on any rank stops all at the same iteration, and the weight hashes are compared
    /// every `hashEvery` iterations. Rank 0 alone writes the log, checkpoints and callbacks' files; the others only
    /// read checkpoints (resume).
    public var parallel: DataParallelSession?
    private var averager: GradientAverager?

    /// Whether this process writes the run folder (one process, or rank 0).
    public var writesRun: Bool { parallel?.isRoot ?? true }

    public private(set) var state: LoopState
    let log: RunLog

    public init(run: RunDirectory, model: Model, data: Data, schedule: IterationSchedule, initialLearningRate: Float,
                options: LoopOptions) {
        self.run = run
        self.model = model
        self.data = data
        self.schedule = schedule
        self.initialLearningRate = initialLearningRate
        self.options = options
        state = LoopState(iteration: 0, learningRate: initialLearningRate)
        log = RunLog(url: run.logURL)
    }

    public var iteration: Int { state.iteration }

    /// The file of a set holding the loop's state (the model's choice; `state.json` by default).
    var stateComponent: CheckpointComponent {
        model.loopStateComponent(get: { self.state }, set: { self.state = $0 })
    }

    /// The files of a set: the model's components and the loop's state.
    var components: [CheckpointComponent] { model.checkpointComponents + [stateComponent] }

    /// Loads the set `latest` names, else the newest set that loads; drops the log records after it. Returns the
    /// iteration resumed at (0 when there is no set). A set that cannot be read is named in a message and skipped;
    /// when none loads, the first error is thrown.
    @discardableResult
    public func resume() throws -> Int {
        var candidates = run.checkpointSets().map(\.name).reversed().map { $0 }
        if let latest = run.linkTarget(.latest) {
            candidates.removeAll { $0 == latest }
            candidates.insert(latest, at: 0)
        }
        var firstError: Error?
        for name in candidates {
            do {
                try load(set: name)
                onMessage("resuming \(run.url.path) at iteration \(state.iteration) of \(schedule.totalIterations)")
                firstError = nil
                break
            } catch let error as any ResumeRefusal {
                throw error
            } catch {
                onMessage("cannot load checkpoint \(name): \(error)")
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
        if writesRun { try log.truncate(toIteration: state.iteration) }
        return state.iteration
    }

    /// Reads a set: the loop's state first (so a model's components can check themselves against it), then the
    /// model's components.
    func load(set name: String) throws {
        let directory = run.setURL(name)
        for component in [stateComponent] + model.checkpointComponents {
            let url = directory.appendingPathComponent(component.file)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw RunError.checkpoint(path: url.path, reason: "missing from the checkpoint set")
            }
            try component.read(url)
        }
        guard state.format == LoopState.currentFormat,
              state.iteration == RunDirectory.iteration(ofSetName: name) else {
            throw RunError.checkpoint(path: directory.appendingPathComponent("state.json").path,
                                      reason: "format \(state.format), iteration \(state.iteration): not this set's state")
        }
    }

    /// Trains to the end of the schedule or until `stop` asks (then saves and returns `.stopped`). Throws on a
    /// non-finite loss (the last good set is kept) and on failures to read data or write files.
    public func run(stop: StopSignal = StopSignal()) throws -> LoopOutcome {
        let total = schedule.totalIterations
        if state.iteration >= total {
            onMessage("the run is complete (\(state.iteration) of \(total) iterations)")
            return try end(.completed(iteration: state.iteration))
        }
        try startParallel()
        if let signal = try agreedStop(stop) { return try end(.stopped(signal: signal, iteration: state.iteration)) }
        let epochLength = max(data.epochLength, 1)
        let validateEvery = options.validateEvery ?? epochLength
        while state.iteration < total {
            let start = DispatchTime.now().uptimeNanoseconds
            let index = state.iteration
            let learningRate = schedule.learningRate(atIteration: index, initial: initialLearningRate)
            let batch = try data.batch(at: index)
            let stepLosses = model.trainStep(batch, learningRate: learningRate).named
            // Under MPI: the losses of the global batch (the ranks' mean).
            let losses = try parallelMean(stepLosses)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let epoch = index / epochLength + 1
            var values: [(name: String, value: Double?)] = [("epoch", Double(epoch)), ("lr", Double(learningRate))]
            values += losses.map { ($0.name, $0.value.isFinite ? Double($0.value) : nil) }
            values.append(("seconds", (seconds * 1e4).rounded() / 1e4))
            if let statistics = averager?.takeStatistics() {
                values += [("allreduce_bytes", Double(statistics.bytes)),
                           ("allreduce_seconds", (statistics.reduceSeconds * 1e4).rounded() / 1e4),
                           ("allreduce_wait_seconds", (statistics.waitSeconds * 1e4).rounded() / 1e4)]
            }
            if writesRun { try log.append(LogRecord(kind: .train, iteration: index + 1, values: values)) }
            if let bad = losses.first(where: { !$0.value.isFinite }) {
                throw RunError.nonFiniteLoss(path: run.url.path, loss: bad.name, value: bad.value, iteration: index + 1,
                                             kept: run.linkTarget(.latest))
            }
            state.iteration = index + 1
            state.learningRate = learningRate
            state.trainingSeconds += seconds
            let event = StepEvent(iteration: state.iteration, totalIterations: total, epoch: epoch,
                                  learningRate: learningRate, losses: losses, seconds: seconds)
            let finished = state.iteration == total
            // The other ranks of a data-parallel job write nothing: no callbacks, validation or checkpoints.
            var improved = false
            if writesRun {
                for callback in callbacks { try callback.trainingDidStep(event) }
                if let validator, state.iteration % validateEvery == 0 || finished {
                    model.releaseStepBuffers()
                    let result = try validator.validate(iteration: state.iteration)
                    if result.score.isFinite, state.bestScore.map({ validator.isBetter(result.score, than: $0) }) ?? true {
                        state.bestScore = result.score
                        state.bestIteration = state.iteration
                        improved = true
                    }
                    try log.append(LogRecord(kind: .validation, iteration: state.iteration,
                                             values: [("epoch", Double(epoch))] + result.values.map { ($0.name, $0.value) }))
                    for callback in callbacks {
                        try callback.trainingDidValidate(iteration: state.iteration, values: result.values, best: improved)
                    }
                }
            }
            // Under MPI the stop any rank was asked for, so that every rank stops after this iteration.
            let stopSignal = try agreedStop(stop)
            if let parallel, state.iteration % parallel.hashEvery == 0 || finished || stopSignal != nil {
                try compareReplicas(parallel)
            }
            guard writesRun else {
                if let stopSignal { return .stopped(signal: stopSignal, iteration: state.iteration) }
                continue
            }
            if state.iteration % options.sampleEvery == 0 || finished || (samplesAtStop && stopSignal != nil) {
                for callback in callbacks { try callback.trainingWantsSamples(iteration: state.iteration) }
            }
            if state.iteration % options.checkpointEvery == 0 || finished || improved || stopSignal != nil {
                try saveCheckpoint(best: improved)
            }
            if let stopSignal { return try end(.stopped(signal: stopSignal, iteration: state.iteration)) }
        }
        return try end(.completed(iteration: state.iteration))
    }

    func end(_ outcome: LoopOutcome) throws -> LoopOutcome {
        guard writesRun else { return outcome }
        for callback in callbacks { try callback.trainingDidEnd(outcome) }
        return outcome
    }

    // MARK: Data-parallel training

    /// Checks that the model and data can be split over the communicator's ranks and installs the gradient
    /// averaging on the model's optimisers (once).
    func startParallel() throws {
        guard let parallel, averager == nil else { return }
        let communicator = parallel.communicator
        guard !model.optimizers.isEmpty else {
            throw DataParallelError.unsupported(reason: "\(Model.self) names no optimisers to average")
        }
        guard let sharded = data as? any ShardedTrainingData else {
            throw DataParallelError.unsupported(reason: "\(Data.self) does not split its batches over ranks")
        }
        guard sharded.batchPlan.ranks == communicator.size, sharded.batchPlan.rank == communicator.rank else {
            throw DataParallelError.unsupported(reason: "the data is split for rank \(sharded.batchPlan.rank) of \(sharded.batchPlan.ranks), "
                                                + "this is rank \(communicator.rank) of \(communicator.size)")
        }
        let averager = GradientAverager(communicator: communicator, bucketBytes: parallel.bucketBytes)
        for optimizer in model.optimizers { optimizer.gradientReducer = averager }
        self.averager = averager
        // Replicas start identical (same seed, same checkpoint) or the job stops here.
        try compareReplicas(parallel)
    }

    /// The ranks' mean of each loss (one all-reduce); the step's own losses on one process.
    func parallelMean(_ losses: [(name: String, value: Float)]) throws -> [(name: String, value: Float)] {
        guard let communicator = parallel?.communicator else { return losses }
        let mean = try communicator.mean(losses.map { Double($0.value) })
        return zip(losses, mean).map { ($0.name, Float($1)) }
    }

    /// The stop signal any rank received (the largest signal number), so that all stop after the same iteration.
    func agreedStop(_ stop: StopSignal) throws -> Int32? {
        let local = stop.requestedBy
        guard let communicator = parallel?.communicator else { return local }
        let agreed = try communicator.maximum(UInt64(max(0, local ?? 0)))
        return agreed == 0 ? nil : Int32(agreed)
    }

    /// Compares every rank's hash of the optimisers' parameters with rank 0's; throws naming the ranks that differ.
    func compareReplicas(_ parallel: DataParallelSession) throws {
        let hash = WeightHash.of(model.optimizers.flatMap(\.parameters))
        let hashes = try parallel.communicator.gather(hash)
        let differing = hashes.indices.filter { hashes[$0] != hashes[0] }
        if !differing.isEmpty { throw DataParallelError.replicasDiverged(iteration: state.iteration, ranks: differing) }
    }

    /// Saves a set of the current state, moves `latest` (and `best`) to it, rotates old sets.
    public func saveCheckpoint(best: Bool) throws {
        guard writesRun else { return }
        let components = self.components
        let name = try run.writeSet(iteration: state.iteration) { directory in
            for component in components { try component.write(directory.appendingPathComponent(component.file)) }
        }
        try run.setLink(.latest, to: name)
        if best { try run.setLink(.best, to: name) }
        try run.rotate(keep: options.keepCheckpoints)
        if logsCheckpoints {
            try log.append(LogRecord(kind: .checkpoint, iteration: state.iteration, values: [("best", best ? 1 : 0)]))
        }
        for callback in callbacks { try callback.trainingDidSaveCheckpoint(iteration: state.iteration, set: name, best: best) }
    }
}
