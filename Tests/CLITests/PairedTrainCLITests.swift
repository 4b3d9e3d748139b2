import Foundation
import NIfTI
import Testing
import TestSupport

/// `mr2ct train --paired` end to end: the built binary on generated registered head pairs, tiny networks.
@Suite("mr2ct train --paired (binary)", .serialized)
struct PairedTrainCLITests {
    static func arguments(data: (mr: URL, ct: URL), run: URL, iterations: Int) -> [String] {
        ["train", "--paired", "--mr", data.mr.path, "--ct", data.ct.path, "--run", run.path,
         "--generator", "unet_128", "--slice-size", "128", "--ngf", "2", "--ndf", "4", "--discriminator-layers", "2",
         "--iterations", String(iterations), "--checkpoint-every", "2", "--sample-every", "2", "--threads", "1"]
    }

    /// Trains with validation (`best` kept), converts an MR larger than the training field with the run folder as the
    /// model (the U-Net's whole slice padded to its multiple of 128), and resumes a complete run.
    @Test func trainsValidatesAndConverts() throws {
        let root = try TestSupport.makeTemporaryDirectory("paired-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writePairedFolders(in: root, count: 2)
        let validation = try TrainingVolumes.writePairedFolders(in: root.appendingPathComponent("val"), count: 1, seed: 40)
        let run = root.appendingPathComponent("run")
        let result = try TestSupport.runMR2CT(Self.arguments(data: data, run: run, iterations: 4)
            + ["--val-mr", validation.mr.path, "--val-ct", validation.ct.path, "--validate-every", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("paired training, 4 iterations"))
        #expect(result.stderr.contains("validation at iteration 2: mae"))
        for path in ["config.json", "log.ndjson", "report.html", "samples/iter_0000004.png", "checkpoints/latest/G.safetensors",
                     "checkpoints/best/G.safetensors", "checkpoints/latest/state.json"] {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(path).path), "\(path)")
        }
        let big = root.appendingPathComponent("big.nii.gz")
        try NIfTIFile.write(TrainingVolumes.head(ct: false, grid: GridSize(132, 130, 4), seed: 9), to: big)
        let out = root.appendingPathComponent("sct")
        let convert = try TestSupport.runMR2CT(["convert", "--model", run.path, big.path, "-o", out.path])
        #expect(convert.status == 0, "\(convert.stderr)")
        let written = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".nii.gz") }
        #expect(written.count == 1)
        let sct = try NIfTIFile.read(out.appendingPathComponent(written.first ?? "missing"))
        #expect(sct.grid == GridSize(132, 130, 4))
        #expect(sct.voxels.allSatisfy { $0.isFinite })
        let again = try TestSupport.runMR2CT(["train", "--run", run.path, "--resume", "--threads", "1"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("complete"))
    }

    @Test func sigintSavesAndResumeContinues() throws {
        let root = try TestSupport.makeTemporaryDirectory("paired-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writePairedFolders(in: root, count: 1)
        let run = root.appendingPathComponent("run")
        let arguments = Self.arguments(data: data, run: run, iterations: 100_000) + ["--checkpoint-every", "1000"]
        let first = try TrainCLITests.interrupt(arguments, run: run, afterLines: 3, signal: SIGINT)
        #expect(first.status == 130, "\(first.stderr)")
        #expect(first.stderr.contains("--resume"))
        let stopped = TrainCLITests.trainLines(run).count
        #expect(TrainCLITests.latestTarget(run) == String(format: "iter_%07d", stopped))
        // Without --paired: the folder's paired run is recognised and continued.
        let second = try TrainCLITests.interrupt(["train", "--run", run.path, "--resume", "--threads", "1"], run: run,
                                                 afterLines: stopped + 2, signal: SIGTERM)
        #expect(second.status == 143, "\(second.stderr)")
        #expect(second.stderr.contains("resuming"))
        let iterations = TrainCLITests.trainLines(run).compactMap { $0["iteration"] as? Int }
        #expect(iterations == Array(1...iterations.count))
    }

    @Test func dataAndUsageErrors() throws {
        let root = try TestSupport.makeTemporaryDirectory("paired-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writePairedFolders(in: root, count: 1)
        let ct = data.ct.appendingPathComponent("case_0.nii.gz")
        try NIfTIFile.write(TrainingVolumes.head(ct: true, grid: GridSize(36, 36, 7), seed: 3), to: ct)
        let run = root.appendingPathComponent("run")
        let grid = try TestSupport.runMR2CT(Self.arguments(data: data, run: run, iterations: 2))
        #expect(grid.status == 1)
        let line = grid.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(line.hasPrefix("mr2ct: \(data.mr.appendingPathComponent("case_0.nii.gz").path): "))
        #expect(line.contains(ct.path) && line.contains("dims 36×36×6 vs 36×36×7"))
        let mixed = try TestSupport.runMR2CT(Self.arguments(data: data, run: run, iterations: 2) + ["--lambda-a", "5"])
        #expect(mixed.status == 64)
        #expect(mixed.stderr.contains("--lambda-a is an unpaired (CycleGAN) option"))
        let unpaired = try TestSupport.runMR2CT(["train", "--mr", data.mr.path, "--ct", data.ct.path, "--run", run.path,
                                                 "--lambda-l1", "10"])
        #expect(unpaired.status == 64)
        #expect(unpaired.stderr.contains("--lambda-l1 needs --paired"))
        let size = try TestSupport.runMR2CT(Self.arguments(data: data, run: run, iterations: 2) + ["--slice-size", "96"])
        #expect(size.status == 64)
        #expect(size.stderr.contains("not a multiple of 128"))
    }
}
