import Foundation
import Testing
import TestSupport
@testable import Conversion

/// Input expansion, shards, output naming and planning: the parts of `mr2ct convert` that decide what is converted.
struct ConversionInputsTests {
    @Test func shardsAreDisjointAndComplete() throws {
        for size in 0...23 {
            let items = Array(0..<size)
            for count in 1...7 {
                let parts = try (0..<count).map { try Shard(index: $0, count: count).select(items) }
                #expect(parts.flatMap { $0 }.sorted() == items, "size \(size), \(count) shards")
                #expect(Set(parts.flatMap { $0 }).count == size)
                // Balanced: sizes differ by at most one.
                #expect((parts.map(\.count).max() ?? 0) - (parts.map(\.count).min() ?? 0) <= 1)
            }
        }
        #expect(try Shard(parsing: "2/5") == Shard(index: 2, count: 5))
        for bad in ["5/5", "-1/3", "1/0", "a/b", "1", "1/2/3", "", "/"] {
            #expect(throws: ShardError.self, "\(bad)") { try Shard(parsing: bad) }
        }
    }

    @Test func inputsExpandFoldersAndStandardInputSortedAndDeduplicated() throws {
        let root = try TestSupport.makeTemporaryDirectory("conv-inputs")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = root.appendingPathComponent("mr")
        let empty = root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub.nii"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        for name in ["b.nii.gz", "a.nii", "c.txt", ".hidden.nii", "d.hdr", "d.img"] {
            try Data().write(to: folder.appendingPathComponent(name))
        }
        let stdin = ["", "# a comment", "  \(folder.path)/a.nii  ", "\(root.path)/missing.nii.gz", "\(folder.path)/../mr/b.nii.gz\r"]
        let items = ConversionInputs.expand([folder.path, "-", empty.path, folder.path + "/a.nii"], standardInput: { stdin })
        #expect(items.map(\.path) == [
            empty.standardizedFileURL.path,
            root.appendingPathComponent("missing.nii.gz").path,
            folder.appendingPathComponent("a.nii").path,
            folder.appendingPathComponent("b.nii.gz").path,
            folder.appendingPathComponent("d.hdr").path,
        ].sorted())
        #expect(items.first { $0.path.hasSuffix("empty") }?.problem != nil)
        #expect(items.filter { $0.problem != nil }.count == 1)
    }

    @Test func outputNamesFollowThePatternAndCollisionsAreReported() throws {
        #expect(try OutputNaming(pattern: "{stem}_ct.nii").name(for: URL(fileURLWithPath: "/x/p01.nii.gz")) == "p01_ct.nii")
        #expect(OutputNaming.standard.name(for: URL(fileURLWithPath: "/x/p01.hdr")) == "p01_sct.nii.gz")
        for bad in ["sct.nii.gz", "{stem}.png", "a/{stem}.nii"] {
            #expect(throws: OutputNamingError.self) { try OutputNaming(pattern: bad) }
        }
        let out = URL(fileURLWithPath: "/out")
        var options = ConversionOptions(outputDirectory: out)
        options.naming = try OutputNaming(pattern: "{stem}.nii.gz")
        let items = [ConversionItem(path: "/a/p1.nii"), ConversionItem(path: "/b/p1.nii.gz"),
                     ConversionItem(path: "/out/p2.nii.gz"), ConversionItem(path: "/c", problem: "empty")]
        let (plan, leftOut) = ConversionRunner.plan(items, options: options)
        #expect(plan[0].problem == nil && plan[0].output?.path == "/out/p1.nii.gz")
        #expect(plan[1].problem?.contains("/a/p1.nii") == true)
        #expect(plan[2].problem?.contains("replace the input") == true)
        #expect(plan[3].problem == "empty" && plan[3].output == nil)
        #expect(leftOut.isEmpty)

        // A folder converted into itself, then again: x_sct.nii.gz is x.nii.gz's output, not a new input.
        let again = ConversionRunner.plan([ConversionItem(path: "/d/x.nii.gz"), ConversionItem(path: "/d/x_sct.nii.gz"),
                                           ConversionItem(path: "/d/y_sct.nii.gz")],
                                          options: ConversionOptions(outputDirectory: URL(fileURLWithPath: "/d")))
        #expect(again.plan.map(\.input.path) == ["/d/x.nii.gz", "/d/y_sct.nii.gz"])
        #expect(again.leftOut.map(\.path) == ["/d/x_sct.nii.gz"])
    }

    @Test func jsonLinesAreValidJSONWithFixedFields() throws {
        let r = ConversionResult(input: "/in/a \"quoted\"\n.nii", output: nil, seconds: 1.23456, status: .error,
                                 error: "bad\tthing \u{1}", preview: nil)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.jsonLine.utf8)) as? [String: Any])
        #expect(object["input"] as? String == "/in/a \"quoted\"\n.nii")
        #expect(object["output"] is NSNull)
        #expect(object["seconds"] as? Double == 1.235)
        #expect(object["status"] as? String == "error")
        #expect(object["error"] as? String == "bad\tthing \u{1}")
        #expect(!r.jsonLine.contains("\n"))
        #expect(JSONText.number(.infinity) == "null")
        #expect(JSONText.number(-0.0000001, digits: 3) == "0")
    }

    @Test func staleTemporaryFilesOfDeadProcessesAreRemoved() throws {
        let folder = try TestSupport.makeTemporaryDirectory("conv-stale")
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("p_sct.nii.gz")
        // A pid that cannot be running (above the kernel's pid_max) and our own pid (alive).
        let dead = folder.appendingPathComponent(".tmp-99999999-12-p_sct.nii.gz")
        let alive = folder.appendingPathComponent(".tmp-\(getpid())-12-p_sct.nii.gz")
        let other = folder.appendingPathComponent(".tmp-99999999-12-q_sct.nii.gz")
        for url in [dead, alive, other] { try Data([1]).write(to: url) }
        ConversionRunner.removeStaleTemporaryFiles(for: output)
        #expect(!FileManager.default.fileExists(atPath: dead.path))
        #expect(FileManager.default.fileExists(atPath: alive.path))
        #expect(FileManager.default.fileExists(atPath: other.path))
    }
}
