import ArgumentParser
import DataParallel
import Foundation
import MR2CTSupport
import NeuralNetwork
import Reporting
import Training

/// The run folder options every training command has (`mr2ct train`, `mr2ct gan train`).
struct RunFolderOptions: ParsableArguments {
    @Option(name: .customLong("run"), help: ArgumentHelp("Run folder (created if missing; an existing run is resumed).", valueName: "DIR"))
    var runDirectory: String
    @Flag(name: .long, help: "Require an existing run in --run and continue it (options not given default to the run's).")
    var resume = false

    var url: URL { URL(fileURLWithPath: runDirectory) }
}

/// The session options every training command has: compute threads, checkpoint and picture intervals, rotation,
/// the progress display. They do not change a run's result and may differ between the sessions of one run.
struct TrainingSessionOptions: ParsableArguments {
    @Option(name: .long, help: "Compute threads. (default: all cores)")
    var threads: Int?
    @Option(name: .long, help: "Save a checkpoint every N iterations. (default: 500)")
    var checkpointEvery: Int?
    @Option(name: .long, help: "Write a picture grid and report.html every N iterations. (default: 250)")
    var sampleEvery: Int?
    @Option(name: .long, help: "Keep the newest N checkpoints (plus the ones latest and best name); 0 keeps all. (default: 3)")
    var keepCheckpoints: Int?
    @Flag(name: .long, help: "No progress display.")
    var quiet = false
    @Option(name: .customLong("hash-every"), help: ArgumentHelp("Under mpirun/srun: compare the ranks' weight hashes every K iterations (and at the end and at a stop); a mismatch stops every rank with an error. (default: 50)", valueName: "K"))
    var hashEvery: Int?

    func validate() throws {
        for (value, name) in [(threads, "threads"), (checkpointEvery, "checkpoint-every"), (sampleEvery, "sample-every")] {
            if let value, value < 1 { throw ValidationError("--\(name) must be at least 1") }
        }
        if let keepCheckpoints, keepCheckpoints < 0 { throw ValidationError("--keep-checkpoints must be 0 or more") }
        if let hashEvery, hashEvery < 1 { throw ValidationError("--hash-every must be at least 1") }
    }

    /// The data-parallel session when mpirun or srun started this process with more than one rank (MPI is
    /// initialised then, never otherwise), nil for one process.
    func dataParallel() throws -> DataParallelSession? {
        guard let communicator = try Communicator.world() else { return nil }
        // Without --threads, the ranks on one machine share its cores instead of each taking all of them.
        if threads == nil {
            let environment = ProcessInfo.processInfo.environment
            let local = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"]
                .lazy.compactMap { environment[$0].flatMap { Int($0) } }.first ?? 1
            ComputeThreads.set(max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local)))
        }
        return DataParallelSession(communicator: communicator, hashEvery: hashEvery ?? 50)
    }

    /// The options given, over a run's loop options.
    func apply(to options: inout LoopOptions) {
        if let checkpointEvery { options.checkpointEvery = checkpointEvery }
        if let sampleEvery { options.sampleEvery = sampleEvery }
        if let keepCheckpoints { options.keepCheckpoints = keepCheckpoints }
    }

    /// The common start of a session: the thread count, and SIGINT/SIGTERM handlers that ask the loop to stop.
    func start() -> StopSignal {
        if let threads { ComputeThreads.set(threads) }
        let stop = StopSignal()
        stop.installSignalHandlers()
        return stop
    }

    /// A progress display for `total` iterations from `completed`, silent under --quiet; and the line lead that
    /// starts messages on a new line while a terminal's progress bar holds the current one.
    func progress(label: String, total: Int, completed: Int, silent: Bool = false) -> (reporter: ProgressReporter, lead: String) {
        let quiet = self.quiet || silent
        return (ProgressReporter(label: label, total: total, unit: "it", style: quiet ? .silent : .automatic, initialCompleted: completed),
                !quiet && isTerminal(STDERR_FILENO) ? "\n" : "")
    }

    /// The end of a session: where the model is (unless --quiet), or how to continue a stopped run (exit 128 + signal).
    /// In a data-parallel job every rank finalises MPI first and only rank 0 prints.
    func finish(_ outcome: LoopOutcome, model: String, resume: String, parallel: DataParallelSession? = nil) throws {
        var standardError = StandardErrorStream()
        if let parallel {
            // Every rank waits for rank 0's last checkpoint: a rank that exits first with 130/143 makes mpirun
            // end the job, rank 0 included.
            try? parallel.communicator.barrier()
            parallel.communicator.finalize()
            if !parallel.isRoot {
                if case .stopped(let signal, _) = outcome { throw ExitCode(128 + signal) }
                return
            }
        }
        switch outcome {
        case .completed(let iteration):
            if !quiet { print("mr2ct: done, \(iteration) iterations; model: \(model)", to: &standardError) }
        case .stopped(let signal, let iteration):
            print("mr2ct: stopped at iteration \(iteration); continue with: \(resume)", to: &standardError)
            throw ExitCode(128 + signal)
        }
    }
}

/// How a training command ends on an error: a usage error passes through (exit 64); in a data-parallel job the
/// job is aborted (`abortDataParallel`); otherwise the one line on stderr and exit 1. `throw trainingFailure(error, …)`.
func trainingFailure(_ error: any Error, parallel: DataParallelSession? = nil) -> any Error {
    if error is ValidationError { return error }
    if let parallel { abortDataParallel(parallel, error) }
    var standardError = StandardErrorStream()
    print("mr2ct: \(error)", to: &standardError)
    return ExitCode.failure
}

/// A training failure in a data-parallel job: the line (rank 0's as one process prints it, the other ranks' with
/// their rank), then MPI_Abort, which ends every rank of the job with status 1 so none waits in a collective.
func abortDataParallel(_ parallel: DataParallelSession, _ error: any Error) -> Never {
    var standardError = StandardErrorStream()
    let rank = parallel.communicator.rank
    print("mr2ct: " + (rank == 0 ? "" : "rank \(rank): ") + "\(error)", to: &standardError)
    parallel.communicator.abort(code: 1)
}
