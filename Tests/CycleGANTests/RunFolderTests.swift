import Foundation
import Testing
@testable import CycleGAN
import TestSupport

@Suite("Run folder: checkpoint sets, links, rotation, lock")
struct RunFolderTests {
    func writeDummySet(_ folder: RunFolder, iteration: Int) throws -> String {
        try folder.writeSet(iteration: iteration) { directory in
            try Data("\(iteration)".utf8).write(to: directory.appendingPathComponent("state.json"))
        }
    }

    @Test func setsAreNamedSortedAndLinked() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try RunFolder(url: root.appendingPathComponent("run"))
        #expect(RunFolder.setName(iteration: 500) == "iter_0000500")
        #expect(RunFolder.iteration(ofSetName: "iter_0000500") == 500)
        #expect(RunFolder.iteration(ofSetName: "latest") == nil)
        for iteration in [20, 3, 100] { _ = try writeDummySet(folder, iteration: iteration) }
        #expect(folder.checkpointSets().map(\.iteration) == [3, 20, 100])
        #expect(folder.linkTarget("latest") == nil)
        try folder.setLink("latest", to: "iter_0000020")
        #expect(folder.linkTarget("latest") == "iter_0000020")
        let content = try String(contentsOf: folder.latestURL.appendingPathComponent("state.json"), encoding: .utf8)
        #expect(content == "20")
        try folder.setLink("latest", to: "iter_0000100")
        #expect(folder.linkTarget("latest") == "iter_0000100")
        // No hidden temporaries remain.
        let hidden = try FileManager.default.contentsOfDirectory(atPath: folder.checkpointsDirectory.path).filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty)
    }

    @Test func rotationKeepsNewestAndLinkedSets() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try RunFolder(url: root)
        for iteration in 1...6 { _ = try writeDummySet(folder, iteration: iteration) }
        try folder.setLink("best", to: "iter_0000002")
        try folder.setLink("latest", to: "iter_0000006")
        try folder.rotate(keep: 3)
        #expect(folder.checkpointSets().map(\.iteration) == [2, 5, 6])
        try folder.rotate(keep: 0)
        #expect(folder.checkpointSets().count == 3)
    }

    @Test func failedSetLeavesNothing() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try RunFolder(url: root)
        struct Boom: Error {}
        #expect(throws: TrainingError.self) {
            try folder.writeSet(iteration: 7) { directory in
                try Data("x".utf8).write(to: directory.appendingPathComponent("G_A.safetensors"))
                throw Boom()
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.checkpointsDirectory.path).isEmpty)
    }

    @Test func leftoversOfAKilledProcessAreRemoved() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        do {
            let folder = try RunFolder(url: root)
            _ = try writeDummySet(folder, iteration: 1)
            for name in [".tmp-iter_0000002-99", ".trash-iter_0000000-99"] {
                try FileManager.default.createDirectory(at: folder.checkpointsDirectory.appendingPathComponent(name),
                                                        withIntermediateDirectories: false)
            }
        }
        let reopened = try RunFolder(url: root)
        let names = try FileManager.default.contentsOfDirectory(atPath: reopened.checkpointsDirectory.path)
        #expect(names == ["iter_0000001"])
    }

    @Test func secondOpenOfTheSameFolderIsRefused() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let first = try RunFolder(url: root)
        let error = #expect(throws: TrainingError.self) { _ = try RunFolder(url: root) }
        #expect(error?.description.contains("in use by another") == true)
        _ = first
    }

    @Test func aFileIsNotARunFolder() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("run")
        try Data().write(to: file)
        let error = #expect(throws: TrainingError.self) { _ = try RunFolder(url: file) }
        #expect(error?.description == "\(file.path): the run folder path is a file, not a folder")
    }
}

@Suite("Training log (NDJSON)")
struct TrainingLogTests {
    @Test func recordsRoundTripExactly() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let url = root.appendingPathComponent("log.ndjson")
        let log = TrainingLog(url: url)
        let loss: Float = 0.123456789
        try log.append(TrainingLogRecord(kind: "train", iteration: 1,
                                         values: ["epoch": 1, "lr": Double(Float(2e-4)), "G_A": Double(loss), "D_A": Double?.none]))
        try log.append(TrainingLogRecord(kind: "validation", iteration: 1, values: ["mae": 81.25, "psnr": 27.123456789012]))
        let line = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").first.map(String.init)
        #expect(line == "{\"kind\":\"train\",\"iteration\":1,\"epoch\":1,\"lr\":0.0002,\"D_A\":null,\"G_A\":0.12345679}")
        let records = try TrainingLog.read(url)
        #expect(records.count == 2)
        #expect(Float(records[0].values["G_A"]!!) == loss)
        #expect(records[0].values["D_A"] == .some(Double?.none))
        #expect(records[1].values["psnr"] == 27.123456789012)
    }

    @Test func truncationDropsLaterRecordsAndCutLines() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let url = root.appendingPathComponent("log.ndjson")
        let log = TrainingLog(url: url)
        for i in 1...5 { try log.append(TrainingLogRecord(kind: "train", iteration: i, values: ["G_A": Double(i)])) }
        let handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
        handle.write(Data("{\"kind\":\"train\",\"itera".utf8))   // a line cut by a crash
        try handle.close()
        #expect(try TrainingLog.read(url).count == 5)
        try log.truncate(toIteration: 3)
        #expect(try TrainingLog.read(url).map(\.iteration) == [1, 2, 3])
        try log.append(TrainingLogRecord(kind: "train", iteration: 4, values: [:]))
        #expect(try TrainingLog.read(url).map(\.iteration) == [1, 2, 3, 4])
    }
}

@Suite("Learning-rate schedule (reference LambdaLR rule)")
struct TrainingScheduleTests {
    /// n_epochs 2, n_epochs_decay 2, 3 iterations per epoch; the reference's factors per epoch are
    /// 1 − max(0, e + 1 − 2)/3 for e = 0…3: 1, 1, 2/3, 1/3.
    @Test func epochScheduleMatchesTheReferenceRule() {
        let schedule = TrainingSchedule.epochs(2, decayEpochs: 2, epochLength: 3)
        #expect(schedule.totalIterations == 12)
        let factors = (0..<12).map { schedule.factor(atIteration: $0) }
        let expected: [Double] = [1, 1, 1, 1, 1, 1, 2.0 / 3, 2.0 / 3, 2.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3]
        for (f, e) in zip(factors, expected) { #expect(abs(f - e) < 1e-12) }
        #expect(abs(schedule.learningRate(atIteration: 9, initial: 3e-4) - 1e-4) < 1e-10)
    }

    /// The reference's 100 + 100 epochs: the rate is 2e-4 through epoch 100, 2e-4·100/101 in epoch 101, and
    /// 2e-4/101 in the last epoch.
    @Test func referenceDefaults() {
        let schedule = TrainingSchedule.epochs(100, decayEpochs: 100, epochLength: 10)
        #expect(schedule.factor(atIteration: 999) == 1)
        #expect(abs(schedule.factor(atIteration: 1000) - 100.0 / 101) < 1e-12)
        #expect(abs(schedule.factor(atIteration: 1999) - 1.0 / 101) < 1e-12)
    }

    @Test func iterationSchedule() {
        let schedule = TrainingSchedule.iterations(5)
        #expect(schedule.totalIterations == 5)
        let factors = (0..<5).map { schedule.factor(atIteration: $0) }
        // constant 2, decay 3: 1, 1, 1 − 1/4, 1 − 2/4, 1 − 3/4
        #expect(factors == [1, 1, 0.75, 0.5, 0.25])
    }
}
