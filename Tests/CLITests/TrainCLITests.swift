import Foundation
import Testing
import TestSupport

/// `mr2ct train` end to end: the built binary on generated head volumes, tiny networks.
@Suite("mr2ct train (binary)", .serialized)
struct TrainCLITests {
    static func tinyArguments(data: (mr: URL, ct: URL), run: URL, iterations: Int) -> [String] {
        ["train", "--mr", data.mr.path, "--ct", data.ct.path, "--run", run.path,
         "--slice-size", "32", "--ngf", "8", "--ndf", "8", "--residual-blocks", "1", "--discriminator-layers", "2",
         "--pool-size", "3", "--iterations", String(iterations), "--checkpoint-every", "2", "--sample-every", "3",
         "--threads", "1", "--seed", "5"]
    }

    static func trainLines(_ run: URL) -> [[String: Any]] {
        let text = (try? String(contentsOf: run.appendingPathComponent("log.ndjson"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["kind"] as? String == "train" }
    }

    static func latestTarget(_ run: URL) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: run.appendingPathComponent("checkpoints/latest").path)
    }

    @Test func trainsAndWritesTheRunFolder() throws {
        let root = try TestSupport.makeTemporaryDirectory("train-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let validation = try TrainingVolumes.writePairedFolders(in: root)
        let run = root.appendingPathComponent("run")
        let result = try TestSupport.runMR2CT(Self.tinyArguments(data: data, run: run, iterations: 6)
            + ["--val-mr", validation.mr.path, "--val-ct", validation.ct.path, "--validate-every", "3"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("validation at iteration 3"))
        for path in ["config.json", "log.ndjson", "report.html", "samples/iter_0000006.png",
                     "checkpoints/latest/G_A.safetensors", "checkpoints/best/G_A.safetensors",
                     "checkpoints/latest/state.json", "checkpoints/latest/optimizer_G.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(path).path), "\(path)")
        }
        #expect(Self.trainLines(run).count == 6)
        #expect(Self.latestTarget(run) == "iter_0000006")

        // Running again: the run is complete; `--resume` alone takes everything from the run folder.
        let again = try TestSupport.runMR2CT(["train", "--run", run.path, "--resume", "--threads", "1"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("complete"))
        // Another configuration on the same run folder: a one-line error, exit 1.
        let other = try TestSupport.runMR2CT(Self.tinyArguments(data: data, run: run, iterations: 6) + ["--ngf", "16"])
        #expect(other.status == 1)
        #expect(other.stderr.contains("another configuration"))
        #expect(other.stderr.contains("model.generator.ngf: 8 ≠ 16"))
    }

    @Test func usageAndDataErrors() throws {
        let root = try TestSupport.makeTemporaryDirectory("train-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let run = root.appendingPathComponent("run")
        // A new run without data folders, or with bad option values: usage errors (64).
        #expect(try TestSupport.runMR2CT(["train", "--run", run.path]).status == 64)
        #expect(try TestSupport.runMR2CT(Self.tinyArguments(data: data, run: run, iterations: 2) + ["--slice-size", "30"]).status == 64)
        #expect(try TestSupport.runMR2CT(Self.tinyArguments(data: data, run: run, iterations: 2) + ["--gan-loss", "wgan"]).status == 64)
        #expect(try TestSupport.runMR2CT(Self.tinyArguments(data: data, run: run, iterations: 2) + ["--epochs", "3"]).status == 64)
        #expect(try TestSupport.runMR2CT(Self.tinyArguments(data: data, run: run, iterations: 2) + ["--lambda-structure", "-1"]).status == 64)
        for crop in ["18", "8", "48"] {   // not a multiple of 4, too small, larger than the 32² slices
            #expect(try TestSupport.runMR2CT(Self.tinyArguments(data: data, run: run, iterations: 2) + ["--crop-size", crop]).status == 64, "\(crop)")
        }
        // --resume on a folder without a run: a failure in one line (issue 16), not a usage text.
        #expect(try TestSupport.runMR2CT(["train", "--run", root.appendingPathComponent("nothing").path, "--resume"]).status == 1)
        // An empty CT folder: exit 1, one line naming the folder.
        let empty = root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let result = try TestSupport.runMR2CT(["train", "--mr", data.mr.path, "--ct", empty.path, "--run", run.path])
        #expect(result.status == 1)
        #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            == "mr2ct: \(empty.path): the CT folder holds no NIfTI volumes (.nii, .nii.gz, .hdr) or DICOM series")
        // An unreadable volume in the MR folder is skipped with a message, or refused when nothing is left.
        let junk = root.appendingPathComponent("junk")
        try FileManager.default.createDirectory(at: junk, withIntermediateDirectories: true)
        try Data("not a nifti file".utf8).write(to: junk.appendingPathComponent("broken.nii"))
        let bad = try TestSupport.runMR2CT(["train", "--mr", junk.path, "--ct", data.ct.path, "--run", root.appendingPathComponent("r2").path])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("broken.nii"))
    }

    /// Starts the binary, waits until the log holds `lines` iterations, and sends `signal`.
    static func interrupt(_ arguments: [String], run: URL, afterLines lines: Int, signal: Int32) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = TestSupport.mr2ctExecutable
        process.arguments = arguments
        let errors = root(of: run).appendingPathComponent("stderr-\(UUID().uuidString).txt")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: errors)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while trainLines(run).count < lines, process.isRunning, Date() < deadline { usleep(20_000) }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
    }

    static func root(of run: URL) -> URL { run.deletingLastPathComponent() }

    @Test func sigintAndSigtermSaveAndExit() throws {
        let root = try TestSupport.makeTemporaryDirectory("train-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let run = root.appendingPathComponent("run")
        let arguments = Self.tinyArguments(data: data, run: run, iterations: 100_000) + ["--checkpoint-every", "1000"]

        let first = try Self.interrupt(arguments, run: run, afterLines: 3, signal: SIGINT)
        #expect(first.status == 130, "\(first.stderr)")
        #expect(first.stderr.contains("SIGINT"))
        #expect(first.stderr.contains("--resume"))
        // The checkpoint is of the last completed iteration, and the log ends there.
        let stopped = Self.trainLines(run).count
        #expect(stopped >= 3)
        #expect(Self.latestTarget(run) == String(format: "iter_%07d", stopped))

        let second = try Self.interrupt(arguments, run: run, afterLines: stopped + 2, signal: SIGTERM)
        #expect(second.status == 143, "\(second.stderr)")
        #expect(second.stderr.contains("resuming"))
        let iterations = Self.trainLines(run).compactMap { $0["iteration"] as? Int }
        #expect(iterations == Array(1...iterations.count))   // resumed where it stopped, no gap, no repeat
        #expect(iterations.count >= stopped + 2)
        #expect(Self.latestTarget(run) == String(format: "iter_%07d", iterations.count))
    }

    /// A file-size limit (`ulimit -f`) while a checkpoint is written: a clear error, exit 1, and the checkpoints
    /// already on disk stay complete; the run then resumes without the limit.
    @Test func fileSizeLimitWhileSavingKeepsTheLastCheckpoint() throws {
        let root = try TestSupport.makeTemporaryDirectory("train-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let run = root.appendingPathComponent("run")
        let arguments = Self.tinyArguments(data: data, run: run, iterations: 100_000) + ["--checkpoint-every", "1000"]
        let first = try Self.interrupt(arguments, run: run, afterLines: 2, signal: SIGINT)
        #expect(first.status == 130, "\(first.stderr)")
        let saved = try #require(Self.latestTarget(run))
        let before = try Data(contentsOf: run.appendingPathComponent("checkpoints/\(saved)/G_A.safetensors"))

        // 48 KiB: the log, pictures and report fit, a generator file (~120 KB) does not.
        let limited = try TestSupport.run(URL(fileURLWithPath: "/bin/bash"),
                                          ["-c", "ulimit -f 48; exec \"$0\" \"$@\"", TestSupport.mr2ctExecutable.path]
                                            + arguments + ["--checkpoint-every", "1"])
        #expect(limited.status == 1, "\(limited.stderr)")
        let lastLine = limited.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(lastLine.hasPrefix("mr2ct: \(run.path)/checkpoints/"), "\(limited.stderr)")
        #expect(lastLine.contains("File too large") || lastLine.contains("too large"), "\(lastLine)")
        #expect(Self.latestTarget(run) == saved)
        #expect(try Data(contentsOf: run.appendingPathComponent("checkpoints/\(saved)/G_A.safetensors")) == before)
        let hidden = try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)
            .filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty, "\(hidden)")

        let resumed = try Self.interrupt(arguments, run: run, afterLines: Self.trainLines(run).count + 1, signal: SIGTERM)
        #expect(resumed.status == 143, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming \(run.path) at iteration \(Int(saved.dropFirst(5))!)"))
    }

    /// Damaged checkpoints (issue 9): a truncated `latest` set falls back to the previous complete set with a
    /// message; when no set loads, a one-line error naming the file, exit 1, nothing overwritten.
    @Test func damagedCheckpointsAreReportedNotTrusted() throws {
        let root = try TestSupport.makeTemporaryDirectory("train-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let run = root.appendingPathComponent("run")
        let arguments = Self.tinyArguments(data: data, run: run, iterations: 6) + ["--keep-checkpoints", "0"]
        let first = try TestSupport.runMR2CT(arguments)
        #expect(first.status == 0, "\(first.stderr)")
        // Sets 2, 4 and 6 are on disk; damage the generator of the latest (6).
        #expect(Self.latestTarget(run) == "iter_0000006")
        let damaged = run.appendingPathComponent("checkpoints/iter_0000006/G_A.safetensors")
        let bytes = try Data(contentsOf: damaged)
        try bytes.prefix(bytes.count / 2).write(to: damaged)

        // The previous set is used, iterations 5 and 6 run again, and the run completes with a sound set 6.
        let result = try TestSupport.runMR2CT(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("cannot load checkpoint iter_0000006"), "\(result.stderr)")
        #expect(result.stderr.contains("resuming \(run.path) at iteration 4"), "\(result.stderr)")
        #expect(try Data(contentsOf: damaged).count == bytes.count)
        #expect(Self.trainLines(run).count == 6)

        // Damage every set: a one-line error naming a file, exit 1.
        for set in try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)
        where set.hasPrefix("iter_") {
            let file = run.appendingPathComponent("checkpoints/\(set)/D_B.safetensors")
            try Data("{}".utf8).write(to: file)
        }
        let broken = try TestSupport.runMR2CT(arguments)
        #expect(broken.status == 1)
        let last = broken.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("mr2ct: \(run.path)/checkpoints/iter_"), "\(broken.stderr)")
        #expect(last.contains("D_B.safetensors") || last.contains("G_A.safetensors"), "\(last)")
    }
}

