import Foundation
import Testing
@testable import Training
import TestSupport

/// The run folder's crash safety (moved from CycleGAN's RunDirectory, whose logic RunDirectory is).
@Suite("Run folder: checkpoint sets, links, rotation, lock")
struct RunDirectoryTests {
    func writeDummySet(_ folder: RunDirectory, iteration: Int) throws -> String {
        try folder.writeSet(iteration: iteration) { directory in
            try Data("\(iteration)".utf8).write(to: directory.appendingPathComponent("state.json"))
        }
    }

    @Test func setsAreNamedSortedAndLinked() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try RunDirectory(url: root.appendingPathComponent("run"))
        #expect(RunDirectory.setName(iteration: 500) == "iter_0000500")
        #expect(RunDirectory.iteration(ofSetName: "iter_0000500") == 500)
        #expect(RunDirectory.iteration(ofSetName: "latest") == nil)
        for iteration in [20, 3, 100] { _ = try writeDummySet(folder, iteration: iteration) }
        #expect(folder.checkpointSets().map(\.iteration) == [3, 20, 100])
        #expect(folder.linkTarget(.latest) == nil)
        try folder.setLink(.latest, to: "iter_0000020")
        #expect(folder.linkTarget(.latest) == "iter_0000020")
        let content = try String(contentsOf: folder.setURL("latest").appendingPathComponent("state.json"), encoding: .utf8)
        #expect(content == "20")
        try folder.setLink(.latest, to: "iter_0000100")
        #expect(folder.linkTarget(.latest) == "iter_0000100")
        // No hidden temporaries remain.
        let hidden = try FileManager.default.contentsOfDirectory(atPath: folder.checkpointsDirectory.path).filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty)
    }

    @Test func rotationKeepsNewestAndLinkedSets() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try RunDirectory(url: root)
        for iteration in 1...6 { _ = try writeDummySet(folder, iteration: iteration) }
        try folder.setLink(.best, to: "iter_0000002")
        try folder.setLink(.latest, to: "iter_0000006")
        try folder.rotate(keep: 3)
        #expect(folder.checkpointSets().map(\.iteration) == [2, 5, 6])
        try folder.rotate(keep: 0)
        #expect(folder.checkpointSets().count == 3)
    }

    @Test func failedSetLeavesNothing() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try RunDirectory(url: root)
        struct Boom: Error {}
        #expect(throws: RunError.self) {
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
            let folder = try RunDirectory(url: root)
            _ = try writeDummySet(folder, iteration: 1)
            for name in [".tmp-iter_0000002-99", ".trash-iter_0000000-99"] {
                try FileManager.default.createDirectory(at: folder.checkpointsDirectory.appendingPathComponent(name),
                                                        withIntermediateDirectories: false)
            }
        }
        let reopened = try RunDirectory(url: root)
        let names = try FileManager.default.contentsOfDirectory(atPath: reopened.checkpointsDirectory.path)
        #expect(names == ["iter_0000001"])
    }

    @Test func secondOpenOfTheSameFolderIsRefused() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let first = try RunDirectory(url: root)
        let error = #expect(throws: RunError.self) { _ = try RunDirectory(url: root) }
        #expect(error?.description.contains("in use by another") == true)
        _ = first
    }

    @Test func aFileIsNotARunDirectory() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("run")
        try Data().write(to: file)
        let error = #expect(throws: RunError.self) { _ = try RunDirectory(url: file) }
        #expect(error?.description == "\(file.path): the run folder path is a file, not a folder")
    }
}

@Suite("Run log (NDJSON)")
struct RunLogTruncationTests {
    @Test func truncationDropsLaterRecordsAndCutLines() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let url = root.appendingPathComponent("log.ndjson")
        let log = RunLog(url: url)
        for i in 1...5 { try log.append(LogRecord(kind: .train, iteration: i, values: [("G_A", Double(i))])) }
        let handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
        handle.write(Data("{\"kind\":\"train\",\"itera".utf8))   // a line cut by a crash
        try handle.close()
        #expect(try RunLog.read(url).count == 5)
        try log.truncate(toIteration: 3)
        #expect(try RunLog.read(url).map(\.iteration) == [1, 2, 3])
        try log.append(LogRecord(kind: .train, iteration: 4, values: []))
        #expect(try RunLog.read(url).map(\.iteration) == [1, 2, 3, 4])
    }
}
