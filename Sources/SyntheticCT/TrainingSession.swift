import CycleGAN
import DataParallel
import Foundation
import MR2CTSupport
import NIfTI
import VolumeIO
import NeuralNetwork
import Preprocessing
import Training

/// Where a training session stands after an iteration, for progress displays.
public struct TrainingProgress: Sendable {
    /// Iterations completed, and in the whole run.
    public var iteration: Int
    public var totalIterations: Int
    /// The 1-based epoch of the last iteration, and the run's number of epochs.
    public var epoch: Int
    public var epochs: Int
    public var learningRate: Float
    public var losses: CycleGANLosses
}

/// One session of an MR→CT training run: opens (or creates) the run folder, checks that it was made with the
/// same configuration, prepares the unpaired slice loader and the validation pairs, and trains the CycleGAN on the
/// model-agnostic `TrainingLoop` (which loads the newest complete checkpoint set, and trains to the end of the
/// schedule or until a stop is requested, writing the log, checkpoints and validation results); this session adds
/// the MR/CT pictures, report and messages as the loop's callbacks.
///
/// Each iteration is the reference's (`CycleGANModel.trainStep`) on the loader's pair for that iteration, at the
/// learning rate of `TrainingSchedule`; since the pair, the rate, the networks, the optimisers and the pools are all
/// restored from a checkpoint, an interrupted and resumed run computes the same losses as an uninterrupted one.
///
/// Semi-supervised runs (`options.pairedMRDirectory`/`pairedCTDirectory`, `model.supervised`): the registered pairs
/// are matched and grid-checked as `train --paired` does (`PairedSliceDataset`), their MR and CT join the loader's
/// MR and CT pools, and each iteration's batch carries one pair slice (drawn from (`pairSeed(seed)`, iteration)) for
/// the step's supervised term.
public final class TrainingSession {
    public let runFolder: RunDirectory
    public let configuration: TrainingConfiguration
    public let schedule: TrainingSchedule
    public var gan: CycleGANModel { model.gan }
    let model: SyntheticCTTrainingModel
    let loop: TrainingLoop<SyntheticCTTrainingModel, UnpairedSliceData>

    /// Usable volumes (MR, CT) the loader prepared: the files of `configuration.data` minus the skipped ones.
    public private(set) var usedVolumes: (mr: Int, ct: Int) = (0, 0)

    /// Iterations completed so far.
    public var iteration: Int { loop.iteration }

    /// Lines for the user (skipped files, what was resumed, validation results); stderr in the tool.
    public var onMessage: (String) -> Void = { _ in }
    /// Called after every iteration.
    public var onProgress: (TrainingProgress) -> Void = { _ in }

    /// The configuration stored in a run folder, nil when the folder holds no run yet.
    public static func storedConfiguration(runDirectory: URL) throws -> TrainingConfiguration? {
        let url = runDirectory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try TrainingConfiguration.read(url)
    }

    /// Opens the run at `runDirectory` with `configuration` (whose `options` name the data folders).
    /// An existing run must have the same configuration (apart from `options`); `requireExisting` refuses to start
    /// a new run (`--resume`). `messages` receives what happens while opening (skipped files, resumed checkpoint).
    ///
    /// With `parallel` (a data-parallel job under MPI) rank 0 opens, checks and records the run as one process does,
    /// then the other ranks open it for reading (after a barrier), check the same configuration, prepare the data
    /// themselves (without the run's cache) and train on their share of each global batch; they write nothing.
    public init(runDirectory: URL, configuration requested: TrainingConfiguration, requireExisting: Bool = false,
                parallel: DataParallelSession? = nil, messages: (String) -> Void = { _ in }) throws {
        let isRoot = parallel?.isRoot ?? true
        // The other ranks wait until rank 0 has opened the folder and written config.json.
        if !isRoot { try parallel?.communicator.barrier() }
        let folder = isRoot ? try RunDirectory(url: runDirectory) : try RunDirectory(readingAt: runDirectory)
        var configuration = requested
        configuration.synchroniseChannels()
        let stored = folder.hasConfiguration ? try TrainingConfiguration.read(folder.configurationURL) : nil
        if configuration.options.pairedMRDirectory == nil, configuration.options.pairedCTDirectory == nil {
            configuration.options.pairedMRDirectory = stored?.options.pairedMRDirectory
            configuration.options.pairedCTDirectory = stored?.options.pairedCTDirectory
        }
        try configuration.validate()
        if stored == nil, requireExisting {
            throw TrainingError(path: folder.url.path, reason: "no training run to resume here (no config.json)")
        }

        // The data: the folders' volume files, the same names as when the run began.
        guard let mrPath = configuration.options.mrDirectory ?? stored?.options.mrDirectory,
              let ctPath = configuration.options.ctDirectory ?? stored?.options.ctDirectory else {
            throw TrainingError(path: folder.url.path, reason: "no training data: give --mr and --ct folders")
        }
        configuration.options.mrDirectory = mrPath
        configuration.options.ctDirectory = ctPath
        let mrFiles = try Self.volumeFiles(in: URL(fileURLWithPath: mrPath), what: "MR")
        let ctFiles = try Self.volumeFiles(in: URL(fileURLWithPath: ctPath), what: "CT")
        configuration.data.mrFiles = mrFiles.map(\.lastPathComponent)
        configuration.data.ctFiles = ctFiles.map(\.lastPathComponent)
        // Semi-supervised: the registered pairs, matched and (when read) grid-checked as `train --paired` does.
        var pairs: [VolumePair] = []
        if let pairedMR = configuration.options.pairedMRDirectory, let pairedCT = configuration.options.pairedCTDirectory {
            pairs = try PairedSliceDataset.match(mrFiles: Self.volumeFiles(in: URL(fileURLWithPath: pairedMR), what: "paired MR"),
                                                 ctFiles: Self.volumeFiles(in: URL(fileURLWithPath: pairedCT), what: "paired CT"))
            configuration.data.pairedMRFiles = pairs.map(\.mr.lastPathComponent)
            configuration.data.pairedCTFiles = pairs.map(\.ct.lastPathComponent)
        }
        var extendedFrom: TrainingLength?
        if let stored {
            configuration.data.epochLength = stored.data.epochLength
            configuration.data.pairedSlices = stored.data.pairedSlices
            var differences = stored.differences(from: configuration)
            // A longer schedule extends the run (checked against the epoch length below); a shorter one is refused.
            if differences.contains(where: { $0.hasPrefix("length.") }) {
                let epoch = max(1, stored.data.epochLength)
                let before = stored.length.schedule(epochLength: epoch).totalIterations
                let after = configuration.length.schedule(epochLength: epoch).totalIterations
                guard after > before else {
                    throw TrainingError(path: folder.url.path, reason: "the run has \(before) iterations "
                        + "(\(stored.length)); a schedule can only be extended, not shortened to \(after)")
                }
                extendedFrom = stored.length
                differences.removeAll { $0.hasPrefix("length.") }
            }
            guard differences.isEmpty else {
                throw TrainingError(path: folder.url.path, reason: "the run folder was made with another configuration ("
                    + differences.prefix(4).joined(separator: "; ") + (differences.count > 4 ? "; …" : "")
                    + "); use another --run folder, or the run's own settings")
            }
        }

        // The supervised term's pairs, read and checked first (a pair on two grids fails before the long preparation),
        // kept in memory; their draw is independent of the loader's (another seed).
        var pairData: PairedSliceDataset?
        if !pairs.isEmpty {
            // Matching, grid check and slice selection are `train --paired`'s (RunError, one line naming the files).
            let data = try PairedSliceDataset(pairs: pairs, configuration: configuration.preprocessing,
                                              seed: Self.pairSeed(configuration.seed), augment: configuration.augment,
                                              cropSize: configuration.cropSize, messages: messages)
            if let stored, stored.data.pairedSlices != data.epochLength {
                throw TrainingError(path: folder.url.path, reason: "the registered pairs changed since the run began "
                    + "(\(stored.data.pairedSlices.map(String.init) ?? "no") pair slices, now \(data.epochLength))")
            }
            configuration.data.pairedSlices = data.epochLength
            pairData = data
        }
        let loader: UnpairedSliceLoader
        do {
            // The pairs' MR join the MR pool and their CT the CT pool: the CycleGAN losses see all data.
            loader = try UnpairedSliceLoader(mrFiles: mrFiles + pairs.map(\.mr), ctFiles: ctFiles + pairs.map(\.ct),
                                             configuration: configuration.preprocessing,
                                             seed: configuration.seed, augment: configuration.augment,
                                             cropSize: configuration.cropSize,
                                             cacheDirectory: isRoot ? folder.url.appendingPathComponent("cache", isDirectory: true) : nil,
                                             rampIterations: 0,
                                             reader: { try VolumeSource.read($0) })
        } catch {
            throw TrainingError(path: folder.url.path, reason: "cannot load the training data: \(error)")
        }
        // Every volume prepared (or skipped) before anything is reported or recorded.
        loader.waitUntilPrepared()
        if let failure = loader.cacheFailures.first {
            let more = loader.cacheFailures.count > 1 ? " (and \(loader.cacheFailures.count - 1) more)" : ""
            throw TrainingError(path: failure.url.path, reason: failure.reason + more
                                + "; nothing was recorded: free space or fix the run folder, then run again")
        }
        let skipped = loader.skippedFiles
        for skipped in skipped { messages("skipped \(skipped.url.path): \(skipped.reason)") }
        let mrUsed = loader.preparedCounts(.mr), ctUsed = loader.preparedCounts(.ct)
        usedVolumes = (mrUsed.volumes, ctUsed.volumes)
        messages("using \(mrUsed.volumes) of \(mrFiles.count + pairs.count) MR volumes (\(mrUsed.slices) slices) and \(ctUsed.volumes) of "
                 + "\(ctFiles.count + pairs.count) CT volumes (\(ctUsed.slices) slices)"
                 + (pairs.isEmpty ? "" : ", the \(pairs.count) pairs' volumes among them")
                 + (skipped.isEmpty ? "" : "; \(skipped.count) skipped (above)"))
        guard loader.epochLength > 0 else {
            throw TrainingError(path: folder.url.path, reason: "the training folders hold no usable slices")
        }
        if let stored, stored.data.epochLength != loader.epochLength {
            throw TrainingError(path: folder.url.path, reason: "the training data changed since the run began "
                + "(epoch length \(stored.data.epochLength), now \(loader.epochLength))")
        }
        configuration.data.epochLength = loader.epochLength
        if isRoot {
            try AtomicFile.write(try configuration.jsonData(), to: folder.configurationURL)
            try parallel?.communicator.barrier()
        }

        self.runFolder = folder
        self.configuration = configuration
        self.schedule = configuration.length.schedule(epochLength: loader.epochLength)
        guard schedule.totalIterations > 0 else {
            throw TrainingError(path: folder.url.path, reason: "the run has no iterations (\(configuration.length))")
        }
        if let extendedFrom {
            let before = extendedFrom.schedule(epochLength: loader.epochLength).totalIterations
            messages("extending the run from \(before) to \(schedule.totalIterations) iterations (\(configuration.length)); "
                     + "from the resumed iteration on, the learning rate follows the new schedule")
        }
        let gan = CycleGANModel(configuration: configuration.model, seed: configuration.seed)
        model = SyntheticCTTrainingModel(gan: gan, configuration: configuration, mrHistogram: { loader.mrIntensityHistogram })
        let options = configuration.options
        loop = TrainingLoop(run: folder, model: model,
                            data: UnpairedSliceData(loader: loader, inputChannels: gan.configuration.generator.inputChannels,
                                                    outputChannels: gan.configuration.generator.outputChannels,
                                                    plan: BatchPlan(batchSize: configuration.slicesPerIteration,
                                                                    rank: parallel?.communicator.rank ?? 0,
                                                                    ranks: parallel?.communicator.size ?? 1),
                                                    pairs: pairData),
                            schedule: schedule.iterationSchedule, initialLearningRate: configuration.model.learningRate,
                            options: LoopOptions(checkpointEvery: options.checkpointEvery, sampleEvery: options.sampleEvery,
                                                 validateEvery: options.validateEvery, keepCheckpoints: options.keepCheckpoints))
        loop.parallel = parallel
        // The log and pictures as runs wrote them before the loop existed.
        loop.logsCheckpoints = false
        loop.samplesAtStop = false
        // Records after the checkpoint belong to iterations that will run again (the loop drops them).
        let resumedAt = try withoutActuallyEscaping(messages) { messages in
            loop.onMessage = messages
            defer { loop.onMessage = { _ in } }
            return try loop.resume()
        }
        if resumedAt == 0, stored != nil {
            messages("restarting \(folder.url.path) from iteration 0 (no checkpoint saved yet)")
        }

        if isRoot, let mr = configuration.options.validationMRDirectory, let ct = configuration.options.validationCTDirectory {
            let validation = try TrainingValidation(mrDirectory: URL(fileURLWithPath: mr), ctDirectory: URL(fileURLWithPath: ct),
                                                    preprocessing: configuration.preprocessing)
            loop.validator = SyntheticCTValidator(validation: validation, generator: gan.gA)
        }
        loop.onMessage = { [unowned self] in self.onMessage($0) }
        let total = schedule.totalIterations, epochLength = loader.epochLength
        let epochs = (total + epochLength - 1) / epochLength
        loop.callbacks = [
            ProgressCallback { [unowned self] event in
                self.onProgress(TrainingProgress(iteration: event.iteration, totalIterations: event.totalIterations,
                                                 epoch: event.epoch, epochs: epochs, learningRate: event.learningRate,
                                                 losses: CycleGANLosses(named: event.losses)))
            },
            SyntheticCTValidator.MessageCallback { [unowned self] in self.onMessage($0) },
            SyntheticCTReportCallback(session: self),
        ]
    }

    /// The seed of a semi-supervised run's pair draws (`PairedSliceDataset`): derived from the run's seed, so that
    /// iteration i's pair is a pure function of (seed, i) and independent of the loader's unpaired draw (which uses
    /// the seed itself with stream i).
    static func pairSeed(_ seed: UInt64) -> UInt64 {
        var random = SeededRandom(seed: seed, stream: 0x7061_6972_7300)   // "pairs"
        return random.next()
    }

    /// The volumes of a training folder (NIfTI files and DICOM series, `VolumeSource.volumes`); a clear error when
    /// it cannot be read, holds none, or holds a series that is refused.
    public static func volumeFiles(in directory: URL, what: String) throws -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TrainingError(path: directory.path, reason: "the \(what) folder does not exist or is not a folder")
        }
        let files: [URL]
        do { files = try VolumeSource.volumes(in: directory) } catch let error as VolumeSourceError {
            throw TrainingError(path: error.path, reason: "in the \(what) folder: \(error.reason)")
        } catch {
            throw TrainingError(path: directory.path, reason: "cannot list the \(what) folder (\(error))")
        }
        guard !files.isEmpty else {
            throw TrainingError(path: directory.path, reason: "the \(what) folder holds no NIfTI volumes (.nii, .nii.gz, .hdr) or DICOM series")
        }
        return files
    }

    // MARK: The loop

    /// Trains until the end of the schedule or until `stop` is requested (then saves and returns `.stopped`).
    /// Throws on a non-finite loss (keeping the last good checkpoint) and on write failures.
    public func run(stop: StopSignal = StopSignal()) throws -> LoopOutcome {
        try loop.run(stop: stop)
    }

    /// The loop's state: best validation, seconds of training.
    var state: LoopState { loop.state }
}

/// The loader's unpaired pairs as the loop's data: the batch of an iteration is the loader's pairs at this
/// process's global sample indices (`BatchPlan`: sample `s` is `loader.pair(at: s)`, so batch 1 on one process is
/// the pair of the iteration, as before), copied into the networks' input tensors (B × C × S × S).
final class UnpairedSliceData: ShardedTrainingData {
    let loader: UnpairedSliceLoader
    let batchPlan: BatchPlan
    // A (MR) has the 2.5-D context channels; B (CT) is the single slice the MR→CT generator predicts.
    let realA: Tensor
    let realB: Tensor
    /// Semi-supervised runs: the registered pairs, one drawn per iteration for the supervised term.
    let pairs: PairedSliceDataset?

    init(loader: UnpairedSliceLoader, inputChannels: Int, outputChannels: Int, plan: BatchPlan = BatchPlan(),
         pairs: PairedSliceDataset? = nil) {
        self.loader = loader
        batchPlan = plan
        let size = loader.outputSize
        realA = Tensor(shape: [plan.batchSize, inputChannels, size, size])
        realB = Tensor(shape: [plan.batchSize, outputChannels, size, size])
        self.pairs = pairs
    }

    var epochLength: Int { loader.epochLength }

    func batch(at iteration: Int) throws -> CycleGANBatch {
        for (k, sample) in batchPlan.samples(atIteration: iteration).enumerated() {
            let pair = loader.pair(at: sample)
            try Self.copy(pair.mr, into: realA, image: k)
            try Self.copy(pair.ct, into: realB, image: k)
        }
        // Semi-supervised: one registered pair per iteration (the same on every rank of a data-parallel job).
        let registered = try pairs.map { try $0.batch(at: iteration) }
        return CycleGANBatch(realA: realA, realB: realB,
                             pair: registered.map { CycleGANPair(realA: $0.mr, realB: $0.ct, mask: $0.body) })
    }

    /// Copies a loader slice into image `image` of a network input; a slice with more (context) channels than the
    /// tensor's images gives its centre channels.
    static func copy(_ values: [Float], into tensor: Tensor, image: Int = 0) throws {
        let count = tensor.count / max(1, tensor.shape[0])
        guard values.count >= count, values.count % count == 0, (values.count / count) % 2 == 1 else {
            throw TrainingError(path: "training loader", reason: "slice of \(values.count) values for an input of \(tensor.shape)")
        }
        let offset = (values.count - count) / 2
        values.withUnsafeBufferPointer { source in
            (tensor.data.baseAddress! + image * count).update(from: source.baseAddress! + offset, count: count)
        }
    }
}
