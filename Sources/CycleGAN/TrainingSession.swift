import Foundation
import MR2CTSupport
import NIfTI
import VolumeIO
import NeuralNetwork
import Preprocessing

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

/// How a session ended.
public enum TrainingOutcome: Sendable, Equatable {
    /// The run reached its last iteration (now or in an earlier session).
    case completed(iteration: Int)
    /// A signal asked it to stop; a checkpoint of `iteration` was saved.
    case stopped(signal: Int32, iteration: Int)
}

/// One session of a training run: opens (or creates) the run folder, checks that it was made with the same
/// configuration, loads the newest complete checkpoint set, and trains to the end of the schedule or until a stop is
/// requested, writing the log, pictures, report, validation results and checkpoints on the way.
///
/// Each iteration is the reference's (`CycleGAN.trainStep`) on the loader's pair for that iteration, at the
/// learning rate of `TrainingSchedule`; since the pair, the rate, the networks, the optimisers and the pools are all
/// restored from a checkpoint, an interrupted and resumed run computes the same losses as an uninterrupted one.
public final class TrainingSession {
    public let runFolder: RunFolder
    public let configuration: TrainingConfiguration
    public let schedule: TrainingSchedule
    public let gan: CycleGAN
    let loader: UnpairedSliceLoader
    let log: TrainingLog
    let validation: TrainingValidation?
    let history: TrainingHistory

    /// Usable volumes (MR, CT) the loader prepared: the files of `configuration.data` minus the skipped ones.
    public private(set) var usedVolumes: (mr: Int, ct: Int) = (0, 0)

    /// Iterations completed so far.
    public private(set) var iteration: Int
    var bestValidationMAE: Double?
    var bestIteration: Int?
    var trainingSeconds: Double

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
    public init(runDirectory: URL, configuration requested: TrainingConfiguration, requireExisting: Bool = false,
                messages: (String) -> Void = { _ in }) throws {
        let folder = try RunFolder(url: runDirectory)
        var configuration = requested
        configuration.synchroniseChannels()
        try configuration.validate()
        let stored = folder.hasConfiguration ? try TrainingConfiguration.read(folder.configurationURL) : nil
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
        var extendedFrom: TrainingLength?
        if let stored {
            configuration.data.epochLength = stored.data.epochLength
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

        let loader: UnpairedSliceLoader
        do {
            loader = try UnpairedSliceLoader(mrFiles: mrFiles, ctFiles: ctFiles,
                                             configuration: configuration.preprocessing,
                                             seed: configuration.seed, augment: configuration.augment,
                                             cropSize: configuration.cropSize,
                                             cacheDirectory: folder.cacheDirectory, rampIterations: 0,
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
        messages("using \(mrUsed.volumes) of \(mrFiles.count) MR volumes (\(mrUsed.slices) slices) and \(ctUsed.volumes) of "
                 + "\(ctFiles.count) CT volumes (\(ctUsed.slices) slices)"
                 + (skipped.isEmpty ? "" : "; \(skipped.count) skipped (above)"))
        guard loader.epochLength > 0 else {
            throw TrainingError(path: folder.url.path, reason: "the training folders hold no usable slices")
        }
        if let stored, stored.data.epochLength != loader.epochLength {
            throw TrainingError(path: folder.url.path, reason: "the training data changed since the run began "
                + "(epoch length \(stored.data.epochLength), now \(loader.epochLength))")
        }
        configuration.data.epochLength = loader.epochLength
        try AtomicFile.write(try configuration.jsonData(), to: folder.configurationURL)

        self.runFolder = folder
        self.configuration = configuration
        self.loader = loader
        self.schedule = configuration.length.schedule(epochLength: loader.epochLength)
        guard schedule.totalIterations > 0 else {
            throw TrainingError(path: folder.url.path, reason: "the run has no iterations (\(configuration.length))")
        }
        if let extendedFrom {
            let before = extendedFrom.schedule(epochLength: loader.epochLength).totalIterations
            messages("extending the run from \(before) to \(schedule.totalIterations) iterations (\(configuration.length)); "
                     + "from the resumed iteration on, the learning rate follows the new schedule")
        }
        self.gan = CycleGAN(configuration: configuration.model, seed: configuration.seed)
        self.log = TrainingLog(url: folder.logURL)
        self.iteration = 0
        self.trainingSeconds = 0

        if let resumed = try Self.loadNewestSet(folder, into: gan, configuration: configuration, messages: messages) {
            iteration = resumed.iteration
            bestValidationMAE = resumed.bestValidationMAE
            bestIteration = resumed.bestIteration
            trainingSeconds = resumed.trainingSeconds
            messages("resuming \(folder.url.path) at iteration \(resumed.iteration) of \(schedule.totalIterations)")
        } else if stored != nil {
            messages("restarting \(folder.url.path) from iteration 0 (no checkpoint saved yet)")
        }
        // Records after the checkpoint belong to iterations that will run again.
        try log.truncate(toIteration: iteration)
        history = TrainingHistory(records: try TrainingLog.read(folder.logURL))

        if let mr = configuration.options.validationMRDirectory, let ct = configuration.options.validationCTDirectory {
            validation = try TrainingValidation(mrDirectory: URL(fileURLWithPath: mr), ctDirectory: URL(fileURLWithPath: ct),
                                                preprocessing: configuration.preprocessing)
        } else {
            validation = nil
        }
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

    /// Loads the set `latest` names, or else the newest set that loads; nil when there is none.
    static func loadNewestSet(_ folder: RunFolder, into gan: CycleGAN, configuration: TrainingConfiguration,
                              messages: (String) -> Void) throws -> TrainingState? {
        var candidates = folder.checkpointSets().map(\.name).reversed().map { $0 }
        if let latest = folder.linkTarget("latest") {
            candidates.removeAll { $0 == latest }
            candidates.insert(latest, at: 0)
        }
        var firstError: Error?
        for name in candidates {
            do {
                return try TrainingCheckpoint.load(folder.setURL(name), into: gan, configuration: configuration)
            } catch let error as TrainingError where error.reason.contains("another configuration") {
                throw error
            } catch {
                messages("cannot load checkpoint \(name): \(error)")
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
        return nil
    }

    // MARK: The loop

    /// Trains until the end of the schedule or until `stop` is requested (then saves and returns `.stopped`).
    /// Throws on a non-finite loss (keeping the last good checkpoint) and on write failures.
    public func run(stop: TrainingStopRequest = TrainingStopRequest()) throws -> TrainingOutcome {
        let total = schedule.totalIterations
        let options = configuration.options
        if iteration >= total {
            onMessage("the run is complete (\(iteration) of \(total) iterations)")
            return .completed(iteration: iteration)
        }
        if let signal = stop.requestedBy { return .stopped(signal: signal, iteration: iteration) }
        let size = loader.outputSize
        // A (MR) has the 2.5-D context channels; B (CT) is the single slice the MR→CT generator predicts.
        let realA = Tensor(shape: [1, gan.configuration.generator.inputChannels, size, size])
        let realB = Tensor(shape: [1, gan.configuration.generator.outputChannels, size, size])
        let epochLength = loader.epochLength
        let epochs = (total + epochLength - 1) / epochLength
        let validateEvery = options.validateEvery ?? epochLength
        var lastSavedIteration = iteration

        while iteration < total {
            let start = DispatchTime.now().uptimeNanoseconds
            let index = iteration
            let learningRate = schedule.learningRate(atIteration: index, initial: configuration.model.learningRate)
            gan.learningRate = learningRate
            let pair = loader.pair(at: index)
            try Self.copy(pair.mr, into: realA)
            try Self.copy(pair.ct, into: realB)
            let losses = gan.trainStep(realA: realA, realB: realB)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let epoch = index / epochLength + 1
            let record = TrainingLogRecord(kind: "train", iteration: index + 1,
                                           values: Self.values(losses, epoch: epoch, learningRate: learningRate, seconds: seconds))
            try log.append(record)
            history.append(record)
            if let bad = Self.firstNonFinite(losses) {
                let kept = runFolder.linkTarget("latest").map { "checkpoints/\($0) is kept" } ?? "no checkpoint was saved yet"
                throw TrainingError(path: runFolder.url.path,
                                    reason: "loss \(bad.name) is \(bad.value) at iteration \(index + 1): training stopped; "
                                        + "the last good checkpoint \(kept) (a lower --lr may help; start a new --run)")
            }
            iteration = index + 1
            trainingSeconds += seconds
            onProgress(TrainingProgress(iteration: iteration, totalIterations: total, epoch: epoch, epochs: epochs,
                                        learningRate: learningRate, losses: losses))

            let finished = iteration == total
            var improved = false
            if let validation, iteration % validateEvery == 0 || finished {
                let result = try validation.evaluate(gan.gA)
                let record = TrainingLogRecord(kind: "validation", iteration: iteration,
                                               values: ["epoch": Double(epoch), "mae": result.mae, "me": result.me,
                                                        "psnr": result.psnr, "volumes": Double(result.volumes)])
                try log.append(record)
                history.append(record)
                onMessage(String(format: "validation at iteration %d: MAE %.1f HU, ME %.1f HU, PSNR %.2f dB (%d volumes)",
                                 iteration, result.mae, result.me, result.psnr, result.volumes))
                if result.mae.isFinite, result.mae < (bestValidationMAE ?? .infinity) {
                    bestValidationMAE = result.mae
                    bestIteration = iteration
                    improved = true
                }
            }
            if iteration % options.sampleEvery == 0 || finished {
                try writeSamples()
            }
            let stopSignal = stop.requestedBy
            if iteration % options.checkpointEvery == 0 || finished || improved || stopSignal != nil {
                try saveCheckpoint(learningRate: learningRate, improved: improved)
                lastSavedIteration = iteration
            }
            if let stopSignal {
                if iteration % options.sampleEvery != 0, !finished { try writeReport() }
                return .stopped(signal: stopSignal, iteration: iteration)
            }
        }
        _ = lastSavedIteration
        return .completed(iteration: iteration)
    }

    /// Saves a set of the current state, moves `latest` (and `best` when `improved`) to it, and rotates.
    func saveCheckpoint(learningRate: Float, improved: Bool) throws {
        let state = TrainingState(iteration: iteration, learningRate: learningRate, bestValidationMAE: bestValidationMAE,
                                  bestIteration: bestIteration, trainingSeconds: trainingSeconds,
                                  configuration: configuration)
        let name = try runFolder.writeSet(iteration: iteration) { directory in
            try TrainingCheckpoint.write(gan, state: state, mrHistogram: loader.mrIntensityHistogram, to: directory)
        }
        try runFolder.setLink("latest", to: name)
        if improved { try runFolder.setLink("best", to: name) }
        try runFolder.rotate(keep: configuration.options.keepCheckpoints)
    }

    /// The picture grid of the last iteration and the report.
    func writeSamples() throws {
        let url = runFolder.samplesDirectory.appendingPathComponent(RunFolder.setName(iteration: iteration) + ".png")
        try TrainingReport.writeGrid(visuals: gan.lastVisuals, preprocessing: configuration.preprocessing, to: url)
        history.latestSample = url.lastPathComponent
        try writeReport()
    }

    func writeReport() throws {
        try TrainingReport(configuration: configuration, schedule: schedule, history: history, iteration: iteration,
                           bestIteration: bestIteration, trainingSeconds: trainingSeconds)
            .write(to: runFolder.reportURL)
    }

    // MARK: Helpers

    /// Copies a loader slice into a network input; a slice with more (context) channels than the tensor gives its
    /// centre channels.
    static func copy(_ values: [Float], into tensor: Tensor) throws {
        let count = tensor.count
        guard values.count >= count, values.count % count == 0, (values.count / count) % 2 == 1 else {
            throw TrainingError(path: "training loader", reason: "slice of \(values.count) values for an input of \(tensor.shape)")
        }
        let offset = (values.count - count) / 2
        values.withUnsafeBufferPointer { source in
            tensor.data.baseAddress!.update(from: source.baseAddress! + offset, count: count)
        }
    }

    static func values(_ losses: CycleGANLosses, epoch: Int, learningRate: Float, seconds: Double) -> [String: Double?] {
        var values: [String: Double?] = ["epoch": Double(epoch), "lr": Double(learningRate),
                                          "seconds": (seconds * 1e4).rounded() / 1e4]
        for (name, value) in losses.named { values[name] = value.isFinite ? Double(value) : nil }
        return values
    }

    static func firstNonFinite(_ losses: CycleGANLosses) -> (name: String, value: Float)? {
        losses.named.first { !$0.value.isFinite }
    }
}
