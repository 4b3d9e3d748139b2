import Foundation
import Testing
@testable import CycleGAN
@testable import SyntheticCT
import NIfTI
import NeuralNetwork
import Safetensors
import Training
import TestSupport

/// Semi-supervised runs (issue 18 item 2): unpaired folders plus registered pairs, tiny networks.
@Suite("Semi-supervised training sessions", .serialized)
struct SemiSupervisedSessionTests {
    static func configuration(root: URL, iterations: Int = 6, lambda: Float = 100) throws -> TrainingConfiguration {
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let pairs = try TrainingVolumes.writePairedFolders(in: root, count: 2)
        var c = TinyRun.configuration(data: data, iterations: iterations)
        c.model.supervised = CycleGANSupervision(lambda: lambda)
        c.options.pairedMRDirectory = pairs.mr.path
        c.options.pairedCTDirectory = pairs.ct.path
        return c
    }

    static func supervisedLosses(_ run: URL) throws -> [Double] {
        try RunLog.read(run.appendingPathComponent("log.ndjson")).filter { $0.kind == .train }.map { $0.value("G_sup") ?? .nan }
    }

    @Test func aRunRecordsItsPairsAndTheSupervisedTerm() throws {
        let root = try TestSupport.makeTemporaryDirectory("semi")
        defer { try? FileManager.default.removeItem(at: root) }
        let configuration = try Self.configuration(root: root)
        let run = root.appendingPathComponent("run")
        var messages: [String] = []
        do {
            let session = try TrainingSession(runDirectory: run, configuration: configuration) { messages.append($0) }
            #expect(try session.run() == .completed(iteration: 6))
            // The pairs joined the pools: 2 unpaired + 2 paired volumes of each modality.
            #expect(session.usedVolumes == (4, 4))
        }
        #expect(messages.contains { $0.hasPrefix("using 4 of 4 MR volumes") && $0.contains("the 2 pairs' volumes among them") }, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("pair case_0.nii.gz + case_0.nii.gz: ") }, "\(messages)")
        let stored = try TrainingConfiguration.read(run.appendingPathComponent("config.json"))
        #expect(stored.data.mrFiles == ["mr_0.nii.gz", "mr_1.nii.gz"])
        #expect(stored.data.pairedMRFiles == ["case_0.nii.gz", "case_1.nii.gz"])
        #expect(stored.data.pairedCTFiles == ["case_0.nii.gz", "case_1.nii.gz"])
        #expect((stored.data.pairedSlices ?? 0) > 0)
        #expect(stored.model.supervised == CycleGANSupervision(lambda: 100))
        // Every iteration logs the supervised term besides the ten others.
        let supervised = try Self.supervisedLosses(run)
        #expect(supervised.count == 6 && supervised.allSatisfy { $0.isFinite && $0 > 0 }, "\(supervised)")
        for row in try TinyRun.losses(run) { #expect(row.allSatisfy { $0.isFinite }) }
        let report = try String(contentsOf: run.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(report.contains("G_sup") && report.contains("registered pair"))
        // The generator says how it was trained, and loads as a model for conversion like any other.
        let file = run.appendingPathComponent("checkpoints/latest/G_A.safetensors")
        let metadata = try SafetensorsFile.read(file).metadata
        #expect(metadata["training"] == "semi-supervised")
        let counts = try JSONDecoder().decode(TrainingDataCounts.self, from: Data(try #require(metadata["training_data"]).utf8))
        #expect(counts == TrainingDataCounts(mrFiles: 2, ctFiles: 2, pairs: 2, pairSlices: stored.data.pairedSlices ?? -1))
        let model = try SyntheticCTModel.load(run)
        let mr = try NIfTIFile.read(root.appendingPathComponent("mr/mr_0.nii.gz"))
        let sct = try model.translator.translate(mr)
        #expect(sct.grid == mr.grid && sct.voxels.allSatisfy { $0.isFinite })
    }

    /// Stopped after iteration 3 and resumed: the same losses (with G_sup) and bit-identical weights as an
    /// uninterrupted run (the pair of an iteration is a pure function of the seed and the iteration).
    @Test func resumedRunFollowsTheUninterruptedTrajectory() throws {
        let root = try TestSupport.makeTemporaryDirectory("semi")
        defer { try? FileManager.default.removeItem(at: root) }
        var configuration = try Self.configuration(root: root, iterations: 7)
        configuration.augment = true
        configuration.options.checkpointEvery = 100
        let straight = root.appendingPathComponent("straight")
        #expect(try TrainingSession(runDirectory: straight, configuration: configuration).run() == .completed(iteration: 7))
        let interrupted = root.appendingPathComponent("interrupted")
        #expect(try TinyRun.stop(interrupted, configuration: configuration, at: 3) == .stopped(signal: SIGINT, iteration: 3))
        // Resumed with the folder options taken from the run (as `--resume` does).
        var resume = configuration
        resume.options.pairedMRDirectory = nil
        resume.options.pairedCTDirectory = nil
        let resumed = try TrainingSession(runDirectory: interrupted, configuration: resume, requireExisting: true)
        #expect(resumed.iteration == 3)
        #expect(try resumed.run() == .completed(iteration: 7))
        #expect(try TinyRun.losses(straight) == TinyRun.losses(interrupted))
        let a = try Self.supervisedLosses(straight), b = try Self.supervisedLosses(interrupted)
        #expect(a.count == 7 && a == b)
        for network in ["G_A", "G_B", "D_A", "D_B"] {
            let wa = try SafetensorsFile.read(straight.appendingPathComponent("checkpoints/latest/\(network).safetensors"))
            let wb = try SafetensorsFile.read(interrupted.appendingPathComponent("checkpoints/latest/\(network).safetensors"))
            for name in wa.names { #expect(try wa.tensor(named: name).values == wb.tensor(named: name).values, "\(network) \(name)") }
        }
        // Another weight is another run.
        var other = configuration
        other.model.supervised = CycleGANSupervision(lambda: 10)
        let error = #expect(throws: TrainingError.self) { _ = try TrainingSession(runDirectory: straight, configuration: other) }
        #expect(error?.description.contains("model.supervised.lambda: 100 ≠ 10") == true, "\(String(describing: error))")
    }

    /// A pair whose CT is on another grid: one line naming both files and what differs, before any slice is prepared.
    @Test func aPairOnTwoGridsIsRefusedNamingBothFiles() throws {
        let root = try TestSupport.makeTemporaryDirectory("semi")
        defer { try? FileManager.default.removeItem(at: root) }
        let configuration = try Self.configuration(root: root)
        let ct = URL(fileURLWithPath: configuration.options.pairedCTDirectory!).appendingPathComponent("case_1.nii.gz")
        try NIfTIFile.write(TrainingVolumes.head(ct: true, grid: GridSize(36, 34, 6), seed: 3), to: ct)
        let error = #expect(throws: RunError.self) {
            _ = try TrainingSession(runDirectory: root.appendingPathComponent("run"), configuration: configuration)
        }
        let text = error.map { "\($0)" } ?? ""
        let mr = URL(fileURLWithPath: configuration.options.pairedMRDirectory!).appendingPathComponent("case_1.nii.gz")
        #expect(text.hasPrefix(mr.path + ": ") && text.contains(ct.path) && text.contains("dims 36×36×6 vs 36×34×6"), "\(text)")
        #expect(!text.contains("\n"))
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("run/config.json").path))
    }

    /// The one configuration check: pair folders both or neither, λ_sup ≥ 0 and finite, a weight needs pairs.
    @Test func configurationIsValidatedInOnePlace() throws {
        let root = try TestSupport.makeTemporaryDirectory("semi")
        defer { try? FileManager.default.removeItem(at: root) }
        let good = try Self.configuration(root: root)
        try good.validate()
        var noCT = good
        noCT.options.pairedCTDirectory = nil
        var negative = good
        negative.model.supervised = CycleGANSupervision(lambda: -1)
        var infinite = good
        infinite.model.supervised = CycleGANSupervision(lambda: .infinity)
        var noWeight = good
        noWeight.model.supervised = nil
        var noPairs = good
        noPairs.options.pairedMRDirectory = nil
        noPairs.options.pairedCTDirectory = nil
        for (c, reason) in [(noCT, "--paired-mr needs --paired-ct"), (negative, "--lambda-supervised must be a number ≥ 0, not -1.0"),
                            (infinite, "--lambda-supervised must be a number ≥ 0, not inf"),
                            (noWeight, "need the supervised term's weight"), (noPairs, "need --paired-mr and --paired-ct")] {
            let error = #expect(throws: TrainingError.self) { try c.validate() }
            #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
        }
        var zero = good
        zero.model.supervised = CycleGANSupervision(lambda: 0)
        try zero.validate()
    }
}
