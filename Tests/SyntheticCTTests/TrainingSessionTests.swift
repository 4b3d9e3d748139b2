import Foundation
import Testing
@testable import CycleGAN
@testable import SyntheticCT
import NeuralNetwork
import Safetensors
import Training
import TestSupport
import Networks

/// Small training runs on generated head volumes (32×32 slices, ngf 8, ndf 8, one residual block).
enum TinyRun {
    static func configuration(data: (mr: URL, ct: URL), iterations: Int = 6, seed: UInt64 = 3) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.preprocessing.sliceSize = 32
        c.model.generator.ngf = 8
        c.model.generator.residualBlocks = 1
        c.model.discriminator.ndf = 8
        c.model.discriminator.layers = 2
        c.model.poolSize = 3
        c.length = .iterations(iterations)
        c.seed = seed
        c.options.mrDirectory = data.mr.path
        c.options.ctDirectory = data.ct.path
        c.options.checkpointEvery = 2
        c.options.sampleEvery = 3
        c.options.keepCheckpoints = 2
        c.synchroniseChannels()
        return c
    }

    /// Trains `configuration` in `run` until iteration `iteration`, then stops it as SIGINT does (saving a checkpoint).
    static func stop(_ run: URL, configuration: TrainingConfiguration, at iteration: Int) throws -> LoopOutcome {
        let session = try TrainingSession(runDirectory: run, configuration: configuration)
        let stop = StopSignal()
        session.onProgress = { if $0.iteration == iteration { _ = stop.request(SIGINT) } }
        return try session.run(stop: stop)
    }

    /// The per-iteration losses of a run's log, as Floats in log order.
    static func losses(_ run: URL) throws -> [[Float]] {
        try RunLog.read(run.appendingPathComponent("log.ndjson")).filter { $0.kind == .train }.map { record in
            TrainingHistory.lossNames.map { Float(record.value($0) ?? .nan) }
        }
    }
}

@Suite("Training sessions", .serialized)
struct TrainingSessionTests {
    @Test func tinyRunWritesEveryArtefact() throws {
        let root = try TestSupport.makeTemporaryDirectory("train")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let validation = try TrainingVolumes.writePairedFolders(in: root)
        var configuration = TinyRun.configuration(data: data)
        configuration.options.validationMRDirectory = validation.mr.path
        configuration.options.validationCTDirectory = validation.ct.path
        configuration.options.validateEvery = 3
        let run = root.appendingPathComponent("run")
        var messages: [String] = []
        let session = try TrainingSession(runDirectory: run, configuration: configuration) { messages.append($0) }
        session.onMessage = { messages.append($0) }
        var seen: [Int] = []
        session.onProgress = { seen.append($0.iteration) }
        #expect(try session.run() == .completed(iteration: 6))
        #expect(seen == [1, 2, 3, 4, 5, 6])

        let manager = FileManager.default
        // config.json: the configuration, with the data's file names and epoch length.
        let stored = try TrainingConfiguration.read(run.appendingPathComponent("config.json"))
        #expect(stored.differences(from: session.configuration).isEmpty)
        #expect(stored.data.mrFiles == ["mr_0.nii.gz", "mr_1.nii.gz"])
        #expect(stored.data.epochLength > 0)
        // log.ndjson: six iterations with every loss, then validation records at 3 and 6.
        let records = try RunLog.read(run.appendingPathComponent("log.ndjson"))
        #expect(records.filter { $0.kind == .train }.map(\.iteration) == [1, 2, 3, 4, 5, 6])
        for record in records where record.kind == .train {
            for name in TrainingHistory.lossNames { #expect((record.value(name) ?? .nan).isFinite) }
        }
        let validationRecords = records.filter { $0.kind == .validation }
        #expect(validationRecords.map(\.iteration) == [3, 6])
        for record in validationRecords {
            let mae = record.value("mae") ?? .nan
            #expect(mae > 0 && mae < 3000)
        }
        // Pictures and report.
        #expect(manager.fileExists(atPath: run.appendingPathComponent("samples/iter_0000003.png").path))
        #expect(manager.fileExists(atPath: run.appendingPathComponent("samples/iter_0000006.png").path))
        let png = try Data(contentsOf: run.appendingPathComponent("samples/iter_0000006.png"))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        let report = try String(contentsOf: run.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(report.contains("<svg"))
        #expect(report.contains("data:image/png;base64,"))
        #expect(report.contains("Validation"))
        #expect(report.contains("iteration 6 / 6"))
        // Checkpoints: rotation keeps 2 plus the best; latest names the last.
        let folder = session.runFolder
        #expect(folder.linkTarget(.latest) == "iter_0000006")
        let best = try #require(folder.linkTarget(.best))
        #expect(Set(folder.checkpointSets().map(\.name)).isSuperset(of: ["iter_0000004", "iter_0000006", best]))
        for file in TrainingCheckpoint.files {
            #expect(manager.fileExists(atPath: folder.setURL("latest").appendingPathComponent(file).path), "\(file)")
        }
        // The generator file is a self-contained model.
        let archive = try SafetensorsFile.read(folder.setURL("latest").appendingPathComponent("G_A.safetensors"))
        #expect(archive.metadata["direction"] == "MR->CT")
        let generator = try JSONDecoder().decode(GeneratorConfiguration.self, from: Data(try #require(archive.metadata["generator"]).utf8))
        #expect(generator == configuration.model.generator)
        #expect(archive.metadata["preprocessing"] != nil)
        #expect(archive.names.contains("model.1.weight"))
        // No temporaries left behind.
        #expect(try manager.contentsOfDirectory(atPath: folder.checkpointsDirectory.path).allSatisfy { !$0.hasPrefix(".") })
    }

    /// A run stopped after iteration 3 and resumed in a new session computes exactly the losses of an uninterrupted
    /// run (the checkpoint restores weights, Adam moments and steps, pools and their generators, the schedule).
    @Test func resumedRunFollowsTheUninterruptedTrajectory() throws {
        let root = try TestSupport.makeTemporaryDirectory("train")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        var configuration = TinyRun.configuration(data: data, iterations: 8)
        configuration.options.checkpointEvery = 100

        let straight = root.appendingPathComponent("straight")
        #expect(try TrainingSession(runDirectory: straight, configuration: configuration).run() == .completed(iteration: 8))

        let interrupted = root.appendingPathComponent("interrupted")
        #expect(try TinyRun.stop(interrupted, configuration: configuration, at: 3) == .stopped(signal: SIGINT, iteration: 3))
        #expect(try TinyRun.losses(interrupted).count == 3)
        let resumed = try TrainingSession(runDirectory: interrupted, configuration: configuration, requireExisting: true)
        #expect(resumed.iteration == 3)
        #expect(try resumed.run() == .completed(iteration: 8))

        let a = try TinyRun.losses(straight), b = try TinyRun.losses(interrupted)
        #expect(a.count == 8)
        #expect(a == b)
        // And the final weights are bit-identical.
        let wa = try SafetensorsFile.read(straight.appendingPathComponent("checkpoints/latest/G_A.safetensors"))
        let wb = try SafetensorsFile.read(interrupted.appendingPathComponent("checkpoints/latest/G_A.safetensors"))
        for name in wa.names { #expect(try wa.tensor(named: name).values == wb.tensor(named: name).values, "\(name)") }
    }

    @Test func anotherConfigurationIsRefused() throws {
        let root = try TestSupport.makeTemporaryDirectory("train")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let configuration = TinyRun.configuration(data: data, iterations: 2)
        let run = root.appendingPathComponent("run")
        _ = try TrainingSession(runDirectory: run, configuration: configuration).run()
        // Running again on the finished run does nothing.
        #expect(try TrainingSession(runDirectory: run, configuration: configuration).run() == .completed(iteration: 2))
        #expect(try RunLog.read(run.appendingPathComponent("log.ndjson")).count == 2)
        var other = configuration
        other.model.generator.ngf = 16
        other.options.checkpointEvery = 7   // options may differ
        let error = #expect(throws: TrainingError.self) { _ = try TrainingSession(runDirectory: run, configuration: other) }
        #expect(error?.description.contains("another configuration") == true)
        #expect(error?.description.contains("model.generator.ngf: 8 ≠ 16") == true)
        #expect(error?.description.contains("\n") == false)
        // Options alone may change.
        var options = configuration
        options.options.sampleEvery = 1
        _ = try TrainingSession(runDirectory: run, configuration: options)
    }

    @Test func aCroppedRunTrainsOnWindowsAndItsCropIsPartOfTheConfiguration() throws {
        let root = try TestSupport.makeTemporaryDirectory("train-crop")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        var configuration = TinyRun.configuration(data: data, iterations: 3)
        configuration.cropSize = 16
        let run = root.appendingPathComponent("run")
        do {   // the session holds the run folder's lock until it goes away
            let session = try TrainingSession(runDirectory: run, configuration: configuration)
            #expect(try session.run() == .completed(iteration: 3))
            #expect(session.gan.lastVisuals[.fakeB]?.shape == [1, 1, 16, 16])
        }
        #expect(try TinyRun.losses(run).count == 3)
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(stored?["cropSize"] as? Int == 16)
        // The generator it saved runs on whole 32² slices (fully convolutional).
        let generator = ResnetGenerator(configuration.model.generator)
        _ = try generator.loadSafetensors(from: run.appendingPathComponent("checkpoints/latest/G_A.safetensors"))
        #expect(generator.infer(Tensor(shape: [1, 1, 32, 32])).shape == [1, 1, 32, 32])
        var other = configuration
        other.cropSize = 24
        let error = #expect(throws: TrainingError.self) { _ = try TrainingSession(runDirectory: run, configuration: other) }
        #expect(error?.description.contains("cropSize: 16 ≠ 24") == true, "\(String(describing: error))")
        // Configurations written before cropping existed decode as whole-slice runs and encode without the key.
        var whole = TinyRun.configuration(data: data)
        whole.cropSize = nil
        let json = try whole.jsonData()
        #expect(!String(decoding: json, as: UTF8.self).contains("cropSize"))
        #expect(try JSONDecoder().decode(TrainingConfiguration.self, from: json).cropSize == nil)
    }

    @Test func aCheckpointThatDoesNotMatchIsNamed() throws {
        let root = try TestSupport.makeTemporaryDirectory("train")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let configuration = TinyRun.configuration(data: data, iterations: 2)
        let run = root.appendingPathComponent("run")
        _ = try TrainingSession(runDirectory: run, configuration: configuration).run()
        // Replace the latest G_A with a generator of another width.
        var wide = configuration.model.generator
        wide.ngf = 4
        let stranger = ResnetGenerator(wide)
        let target = run.appendingPathComponent("checkpoints/iter_0000002/G_A.safetensors")
        try stranger.saveSafetensors(to: target, metadata: [:])
        var c = configuration
        c.synchroniseChannels()
        let gan = CycleGANModel(configuration: c.model, seed: c.seed)
        let stored = try TrainingConfiguration.read(run.appendingPathComponent("config.json"))
        let error = #expect(throws: (any Error).self) {
            _ = try TrainingCheckpoint.load(run.appendingPathComponent("checkpoints/iter_0000002"), into: gan, configuration: stored)
        }
        #expect("\(error!)".contains("G_A.safetensors"))
        // A session falls back to no usable checkpoint only with a clear error, never a trap.
        let sessionError = #expect(throws: (any Error).self) { _ = try TrainingSession(runDirectory: run, configuration: configuration) }
        #expect("\(sessionError!)".contains("G_A.safetensors"))
    }

    @Test func nonFiniteLossStopsAndKeepsTheLastGoodCheckpoint() throws {
        let root = try TestSupport.makeTemporaryDirectory("train")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        var configuration = TinyRun.configuration(data: data, iterations: 40)
        configuration.model.learningRate = 1e30   // Adam steps of 1e30: the discriminators' outputs overflow
        configuration.options.checkpointEvery = 1
        let run = root.appendingPathComponent("run")
        let session = try TrainingSession(runDirectory: run, configuration: configuration)
        let error = #expect(throws: RunError.self) { _ = try session.run() }
        let text = error?.description ?? ""
        #expect(text.contains("training stopped"))
        #expect(text.contains("nan") || text.contains("inf"))
        // Every saved set predates the bad iteration and loads.
        let bad = session.iteration + 1
        #expect(session.runFolder.checkpointSets().allSatisfy { $0.iteration < bad })
        if let latest = session.runFolder.linkTarget(.latest) {
            let gan = CycleGANModel(configuration: session.configuration.model, seed: 0)
            let state = try TrainingCheckpoint.load(session.runFolder.setURL(latest), into: gan, configuration: session.configuration)
            #expect(state.iteration == bad - 1)
        }
    }

    @Test func emptyAndMissingFoldersAreClearErrors() throws {
        let root = try TestSupport.makeTemporaryDirectory("train")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let empty = root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        var c = TinyRun.configuration(data: data)
        c.options.ctDirectory = empty.path
        let e1 = #expect(throws: TrainingError.self) { _ = try TrainingSession(runDirectory: root.appendingPathComponent("r1"), configuration: c) }
        #expect(e1?.description == "\(empty.path): the CT folder holds no NIfTI volumes (.nii, .nii.gz, .hdr) or DICOM series")
        c.options.ctDirectory = root.appendingPathComponent("missing").path
        let e2 = #expect(throws: TrainingError.self) { _ = try TrainingSession(runDirectory: root.appendingPathComponent("r2"), configuration: c) }
        #expect(e2?.description.contains("does not exist") == true)
        let e3 = #expect(throws: TrainingError.self) {
            _ = try TrainingSession(runDirectory: root.appendingPathComponent("r3"), configuration: TinyRun.configuration(data: data),
                                    requireExisting: true)
        }
        #expect(e3?.description.contains("no training run to resume") == true)
    }
}
