import Foundation
import Safetensors
import Testing
import TestSupport

/// Issue 21: `mpirun -n 2 mr2ct train` (Open MPI, two ranks on this machine, `--oversubscribe` for 2-core CI
/// machines) against one process: the same losses and weights as one process with the doubled batch, identical
/// replicas, a killed rank, a stop by a signal, resuming on another number of ranks. Skipped only when mpirun is not
/// installed (Pipelines/setup.sh installs openmpi-bin, so CI runs them).
/// Open MPI's launcher, when installed.
private let installedMPIRun: URL? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].map { URL(fileURLWithPath: $0) }
    .first { FileManager.default.isExecutableFile(atPath: $0.path) }

@Suite("mr2ct train under mpirun (binary)", .serialized,
       .enabled(if: installedMPIRun != nil, "mpirun not found (install openmpi-bin, as Pipelines/setup.sh does)"))
struct DataParallelCLITests {
    static var mpirun: URL? { installedMPIRun }

    /// `mpirun … -n ranks` around the built mr2ct.
    static func mpiArguments(ranks: Int) -> [String] {
        ["--allow-run-as-root", "--oversubscribe", "-n", String(ranks), TestSupport.mr2ctExecutable.path]
    }

    /// Tiny CycleGAN settings (32² slices, ngf 4): seconds per run. Pool 0, so that N ranks × batch B and one
    /// process × batch N·B are the same computation (each rank has its own pool otherwise).
    static func arguments(data: (mr: URL, ct: URL), run: URL, iterations: Int, extra: [String] = []) -> [String] {
        ["train", "--mr", data.mr.path, "--ct", data.ct.path, "--run", run.path,
         "--slice-size", "32", "--ngf", "4", "--ndf", "4", "--residual-blocks", "1", "--discriminator-layers", "2",
         "--pool-size", "0", "--iterations", String(iterations), "--checkpoint-every", "2", "--sample-every", "1000",
         "--keep-checkpoints", "0", "--threads", "1", "--convolution", "native", "--seed", "3", "--quiet"] + extra
    }

    static func runMPI(ranks: Int, _ arguments: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(mpirun!, mpiArguments(ranks: ranks) + arguments)
    }

    /// The train records of a run's log: iteration → loss values (by name; epoch, lr, seconds and the all-reduce
    /// counters left out).
    static func losses(_ run: URL) throws -> [Int: [String: Double]] {
        var out: [Int: [String: Double]] = [:]
        for line in try String(contentsOf: run.appendingPathComponent("log.ndjson"), encoding: .utf8).split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard object["kind"] as? String == "train", let iteration = object["iteration"] as? Int else { continue }
            var values: [String: Double] = [:]
            for (key, value) in object where !["kind", "iteration", "epoch", "lr", "seconds"].contains(key) && !key.hasPrefix("allreduce") {
                values[key] = value as? Double
            }
            out[iteration] = values
        }
        return out
    }

    /// The convolution weights of the four networks in `checkpoints/latest`. Biases are left out: those right
    /// before an InstanceNorm have an exactly zero gradient, which in float32 is rounding noise that Adam turns into
    /// moves of up to lr per step, different for any other order of summation (see CycleGANStepGoldenTests).
    static func weights(_ run: URL, roles: [String] = ["G_A", "G_B", "D_A", "D_B"]) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for role in roles {
            let archive = try SafetensorsFile.read(run.appendingPathComponent("checkpoints/latest/\(role).safetensors"))
            for name in archive.names where name.hasSuffix(".weight") { out["\(role).\(name)"] = try archive.tensor(named: name).values }
        }
        return out
    }

    static func maximumDifference(_ a: [String: [Float]], _ b: [String: [Float]]) throws -> Double {
        try #require(Set(a.keys) == Set(b.keys))
        var worst = 0.0
        for (name, x) in a {
            let y = try #require(b[name])
            try #require(x.count == y.count)
            for i in x.indices { worst = max(worst, Double(abs(x[i] - y[i]))) }
        }
        return worst
    }

    static func latestTarget(_ run: URL) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: run.appendingPathComponent("checkpoints/latest").path)
    }

    @Test func twoRanksOfBatchOneEqualOneProcessOfBatchTwo() throws {
        let root = try TestSupport.makeTemporaryDirectory("mpi-equivalence")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let parallel = root.appendingPathComponent("parallel"), single = root.appendingPathComponent("single")
        let batch1 = root.appendingPathComponent("batch1")
        // --hash-every 1: every iteration compares the two replicas' weight hashes (a difference stops the job).
        let mpi = try Self.runMPI(ranks: 2, Self.arguments(data: data, run: parallel, iterations: 5, extra: ["--hash-every", "1"]))
        #expect(mpi.status == 0, "\(mpi.stderr)")
        #expect(!mpi.stderr.contains("diverged"))
        let one = try TestSupport.runMR2CT(Self.arguments(data: data, run: single, iterations: 5, extra: ["--batch-size", "2"]))
        #expect(one.status == 0, "\(one.stderr)")
        let plain = try TestSupport.runMR2CT(Self.arguments(data: data, run: batch1, iterations: 5))
        #expect(plain.status == 0, "\(plain.stderr)")

        // The logged losses are the global batch's: the ranks' mean equals the batch-2 process's mean.
        let a = try Self.losses(parallel), b = try Self.losses(single), c = try Self.losses(batch1)
        #expect(a.keys.sorted() == Array(1...5) && b.keys.sorted() == Array(1...5))
        var worstLoss = 0.0, batchOneLoss = 0.0
        for iteration in 1...5 {
            let x = try #require(a[iteration]), y = try #require(b[iteration]), z = try #require(c[iteration])
            #expect(Set(x.keys) == Set(y.keys))
            for (name, value) in y {
                let scale = max(abs(value), 1e-3)
                worstLoss = max(worstLoss, abs((x[name] ?? .nan) - value) / scale)
                batchOneLoss = max(batchOneLoss, abs((z[name] ?? .nan) - value) / scale)
            }
        }
        #expect(worstLoss < 1e-4, "relative loss difference \(worstLoss)")
        // Not a vacuous tolerance: the one-process batch-1 run (half the data) is far from both.
        #expect(batchOneLoss > 1e-2, "batch 1 vs batch 2: \(batchOneLoss)")

        // The weights after 5 Adam steps.
        let weightDifference = try Self.maximumDifference(Self.weights(parallel), Self.weights(single))
        let batchOneDifference = try Self.maximumDifference(Self.weights(batch1), Self.weights(single))
        #expect(weightDifference < 1e-5, "max |Δw| \(weightDifference)")
        #expect(batchOneDifference > 1e-4, "batch 1 vs batch 2: max |Δw| \(batchOneDifference)")

        // The run records N and B; rank 1 wrote nothing (one log line per iteration).
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: parallel.appendingPathComponent("config.json"))) as? [String: Any])
        #expect((config["options"] as? [String: Any])?["ranks"] as? Int == 2)
        #expect(config["batchSize"] == nil)
        let singleConfig = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: single.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(singleConfig["batchSize"] as? Int == 2)
        let lines = try String(contentsOf: parallel.appendingPathComponent("log.ndjson"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 5)
        #expect(mpi.stderr.isEmpty || !mpi.stderr.contains("rank 1"), "\(mpi.stderr)")
    }

    /// Paired (pix2pix) training the same way: 2 ranks × batch 1 against one process × batch 2 (instance
    /// normalisation, the default; with --norm batch the two differ by design: each rank normalises its own batch).
    @Test func pairedTrainingOnTwoRanksEqualsOneProcessOfBatchTwo() throws {
        let root = try TestSupport.makeTemporaryDirectory("mpi-paired")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writePairedFolders(in: root, count: 2)
        func arguments(_ run: URL, _ extra: [String]) -> [String] {
            ["train", "--paired", "--mr", data.mr.path, "--ct", data.ct.path, "--run", run.path, "--generator", "resnet",
             "--slice-size", "32", "--ngf", "4", "--ndf", "4", "--residual-blocks", "1", "--discriminator-layers", "2",
             "--iterations", "4", "--checkpoint-every", "2", "--sample-every", "1000", "--threads", "1",
             "--convolution", "native", "--seed", "2", "--quiet"] + extra
        }
        let parallel = root.appendingPathComponent("parallel"), single = root.appendingPathComponent("single")
        let batch1 = root.appendingPathComponent("batch1")
        let mpi = try Self.runMPI(ranks: 2, arguments(parallel, ["--hash-every", "1"]))
        #expect(mpi.status == 0, "\(mpi.stderr)")
        #expect(try TestSupport.runMR2CT(arguments(single, ["--batch-size", "2"])).status == 0)
        #expect(try TestSupport.runMR2CT(arguments(batch1, [])).status == 0)
        let a = try Self.losses(parallel), b = try Self.losses(single), c = try Self.losses(batch1)
        #expect(a.keys.sorted() == Array(1...4) && Set(a[1]?.keys ?? [:].keys) == ["G_GAN", "G_L1", "D_real", "D_fake"])
        var worst = 0.0, batchOne = 0.0
        for iteration in 1...4 {
            for (name, value) in try #require(b[iteration]) {
                let scale = max(abs(value), 1e-3)
                worst = max(worst, abs((a[iteration]?[name] ?? .nan) - value) / scale)
                batchOne = max(batchOne, abs((c[iteration]?[name] ?? .nan) - value) / scale)
            }
        }
        #expect(worst < 1e-4, "relative loss difference \(worst)")
        #expect(batchOne > 1e-2, "batch 1 vs batch 2: \(batchOne)")
        let difference = try Self.maximumDifference(Self.weights(parallel, roles: ["G", "D"]), Self.weights(single, roles: ["G", "D"]))
        let batchOneDifference = try Self.maximumDifference(Self.weights(batch1, roles: ["G", "D"]), Self.weights(single, roles: ["G", "D"]))
        #expect(difference < 1e-5, "max |Δw| \(difference)")
        #expect(batchOneDifference > 1e-4, "batch 1 vs batch 2: max |Δw| \(batchOneDifference)")
    }

    @Test func replicasThatDifferStopTheJob() throws {
        let root = try TestSupport.makeTemporaryDirectory("mpi-diverged")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        let first = try TestSupport.runMR2CT(Self.arguments(data: data, run: a, iterations: 4, extra: ["--checkpoint-every", "1"]))
        #expect(first.status == 0, "\(first.stderr)")
        // b is a's run with `latest` one set back: a rank resuming from b holds other weights than one from a.
        try FileManager.default.copyItem(at: a, to: b)
        let latest = b.appendingPathComponent("checkpoints/latest")
        try FileManager.default.removeItem(at: latest)
        try FileManager.default.createSymbolicLink(atPath: latest.path, withDestinationPath: "iter_0000003")
        // Rank 0 resumes a, rank 1 resumes b (mpirun's MPMD form), both to 6 iterations.
        let arguments = ["--allow-run-as-root", "--oversubscribe",
                         "-n", "1", TestSupport.mr2ctExecutable.path] + Self.arguments(data: data, run: a, iterations: 6)
            + [":", "-n", "1", TestSupport.mr2ctExecutable.path] + Self.arguments(data: data, run: b, iterations: 6)
        let result = try TestSupport.run(Self.mpirun!, arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains("diverged") && result.stderr.contains("rank 1"), "\(result.stderr)")
        // Nothing was trained or saved after the check failed.
        #expect(Self.latestTarget(a) == "iter_0000004")
    }

    /// The pid of the rank-`rank` mr2ct process training in `run` (found by its command line and Open MPI's
    /// OMPI_COMM_WORLD_RANK in its environment).
    static func rankProcess(_ rank: Int, run: URL) -> pid_t? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry),
                  let command = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            let arguments = command.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            let variables = environment.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if arguments.first?.hasSuffix("mr2ct") == true, arguments.contains(run.path),
               variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
        }
        return nil
    }

    /// Starts `mpirun -n 2 … train` to run `iterations`, waits until the log has `lines` train records, does
    /// `action` with the pids of ranks 0 and 1, and waits for mpirun.
    static func interruptMPI(data: (mr: URL, ct: URL), run: URL, lines: Int, action: (pid_t, pid_t) -> Void) throws -> (status: Int32, stderr: String) {
        try interrupt(mpirun!, mpiArguments(ranks: 2) + arguments(data: data, run: run, iterations: 100_000), run: run, lines: lines) { _ in
            if let rank0 = rankProcess(0, run: run), let rank1 = rankProcess(1, run: run) { action(rank0, rank1) }
        }
    }

    /// Runs `executable arguments`, waits for `lines` train records in `run`, does `action` with its pid, waits.
    /// With `resumingAt`, a resumed run: the log may still hold records past that iteration from the session that
    /// was killed (the resumed run truncates them only once it has loaded the checkpoint), so the records count only
    /// after the run said it is resuming (its signal handlers are installed by then) and its truncation was seen.
    /// Counting the stale ones could send SIGTERM within milliseconds of the launch (the first clean-clone CI run on
    /// the Zen 4 VM hung there: the run missed that signal and trained on).
    static func interrupt(_ executable: URL, _ arguments: [String], run: URL, lines: Int, resumingAt: Int? = nil,
                          action: (pid_t) -> Void) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let errors = run.deletingLastPathComponent().appendingPathComponent("stderr-\(UUID().uuidString).txt")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: errors)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        func records() -> Int { (try? losses(run).count) ?? 0 }
        if let resumingAt {
            while process.isRunning, Date() < deadline,
                  !((try? String(contentsOf: errors, encoding: .utf8)) ?? "").contains("resuming") { usleep(2_000) }
            // Until the truncation (or, if the run outpaced the polling, the deadline).
            while process.isRunning, Date() < deadline, records() > resumingAt { usleep(2_000) }
        }
        while records() < lines, process.isRunning, Date() < deadline { usleep(20_000) }
        action(process.processIdentifier)
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
    }

    @Test func aKilledRankEndsTheJobAndTheRunResumesOnOneProcess() throws {
        let root = try TestSupport.makeTemporaryDirectory("mpi-kill")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let run = root.appendingPathComponent("run")
        var killed = false
        let result = try Self.interruptMPI(data: data, run: run, lines: 5) { _, rank1 in
            killed = kill(rank1, SIGKILL) == 0
        }
        #expect(killed)
        #expect(result.status != 0, "\(result.stderr)")
        // The last complete set is `latest` and loads: the run continues on one process (N = 2 → 1).
        let target = try #require(Self.latestTarget(run))
        let saved = try #require(Int(target.dropFirst(5)))
        #expect(saved >= 4 && saved % 2 == 0)
        let resumed = try Self.interrupt(TestSupport.mr2ctExecutable, ["train", "--run", run.path, "--resume", "--threads", "1",
                                                                       "--convolution", "native"], run: run, lines: saved + 2,
                                                                       resumingAt: saved) { kill($0, SIGTERM) }
        #expect(resumed.status == 143, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming \(run.standardizedFileURL.path) at iteration \(saved)"), "\(resumed.stderr)")
        #expect(resumed.stderr.contains("previous session ran on 2 ranks"), "\(resumed.stderr)")
        let iterations = try Self.losses(run).keys.sorted()
        #expect(iterations == Array(1...iterations.count) && iterations.count >= saved + 2)
    }

    @Test func sigtermToOneRankStopsBothAtTheSameIterationAndSavesOnce() throws {
        let root = try TestSupport.makeTemporaryDirectory("mpi-sigterm")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let run = root.appendingPathComponent("run")
        let result = try Self.interruptMPI(data: data, run: run, lines: 3) { _, rank1 in kill(rank1, SIGTERM) }
        #expect(result.status != 0)
        #expect(result.stderr.contains("stopped at iteration"), "\(result.stderr)")
        // Ranks other than 0 print nothing, not even the signal they got.
        #expect(!result.stderr.contains("SIGTERM: finishing"), "\(result.stderr)")
        // Rank 0 saved the iteration both stopped after, and logged each iteration once.
        let iterations = try Self.losses(run).keys.sorted()
        #expect(iterations == Array(1...iterations.count))
        #expect(Self.latestTarget(run) == String(format: "iter_%07d", iterations.count))
        // Resumed on two ranks again, it continues from there.
        let more = try Self.interruptMPI(data: data, run: run, lines: iterations.count + 2) { rank0, _ in kill(rank0, SIGINT) }
        #expect(more.status != 0)
        #expect(more.stderr.contains("resuming"), "\(more.stderr)")
        // Resumed on as many ranks as before: no rank claims the session runs on one process.
        #expect(!more.stderr.contains("trains on one process"), "\(more.stderr)")
        let after = try Self.losses(run).keys.sorted()
        #expect(after == Array(1...after.count) && after.count >= iterations.count + 2)
        #expect(Self.latestTarget(run) == String(format: "iter_%07d", after.count))
    }
}
