import Foundation
import Testing
import TestSupport

/// Issue 17, "CycleGAN re-expressed on the Training layer with no behaviour change": a run folder written by the
/// mr2ct of before the refactoring (Tests/TestSupport/Fixtures/cyclegan_run, made by make_cyclegan_run_fixture.py
/// with that binary) still resumes, and today's binary computes the numbers that binary logged, iteration for
/// iteration and bit for bit (losses, learning rates, validation metrics), resumed or trained from scratch. They run
/// with `--convolution native` (MR2CT's own kernels, the engine that wrote the fixture): the default lets oneDNN take
/// the passes where it is faster (issue 20), which agrees with PyTorch's goldens but not in the last bits. For the
/// same reason they pin OpenBLAS to the kernels the fixture was made with (`OPENBLAS_CORETYPE=Haswell`, the AVX2
/// kernels OpenBLAS also picks on Zen 2/3): on an AVX-512 CPU its default (Cooperlake, SkylakeX) kernels sum in
/// another order, and the validation MAE then differs in the ninth digit (776.80169018 against 776.80168412 HU).
@Suite("Old CycleGAN run folders (binary)", .serialized)
struct OldRunFolderCLITests {
    /// The fixture in the source tree (its checkpoints/latest and best are symlinks, which git keeps).
    static var fixture: URL { TestSupport.packageRoot.appendingPathComponent("Tests/TestSupport/Fixtures/cyclegan_run") }

    static let settings = ["--slice-size", "32", "--ngf", "8", "--ndf", "8", "--residual-blocks", "1",
                           "--discriminator-layers", "2", "--pool-size", "3", "--iterations", "4",
                           "--checkpoint-every", "2", "--sample-every", "2", "--validate-every", "2",
                           "--keep-checkpoints", "0", "--seed", "5"]

    static func dataArguments(_ root: URL) -> [String] {
        ["--mr", root.appendingPathComponent("data/mr").path, "--ct", root.appendingPathComponent("data/ct").path,
         "--val-mr", root.appendingPathComponent("data/val_mr").path,
         "--val-ct", root.appendingPathComponent("data/val_ct").path]
    }

    /// A log's records without the wall-clock `seconds`, as JSON objects in file order.
    static func records(_ url: URL) throws -> [NSDictionary] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return object.filter { $0.key != "seconds" } as NSDictionary
        }
    }

    /// The key order of each line (the log's column order is part of its format).
    static func keyOrders(_ url: URL) throws -> [[String]] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
            line.split(separator: ",").compactMap { part in
                part.split(separator: "\"", omittingEmptySubsequences: false).dropFirst().first.map(String.init)
            }
        }
    }

    /// The environment of the runs: this process's, with OpenBLAS on its AVX2 (Haswell) kernels where the CPU has
    /// AVX2 (every x86-64-v3 machine; elsewhere OpenBLAS's own choice, and the bits may differ).
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        let flags = TestSupport.cpuFlags
        if flags.contains("avx2") && flags.contains("fma") { environment["OPENBLAS_CORETYPE"] = "Haswell" }
        return environment
    }

    static func copyFixture(to root: URL) throws {
        for item in ["data", "run", "expected_log.ndjson"] {
            try FileManager.default.copyItem(at: fixture.appendingPathComponent(item), to: root.appendingPathComponent(item))
        }
        let latest = try FileManager.default.destinationOfSymbolicLink(atPath: root.appendingPathComponent("run/checkpoints/latest").path)
        try #require(latest == "iter_0000002", "the fixture's checkpoints/latest must be a symlink to iter_0000002")
    }

    @Test func anOldRunFolderResumesWithTheOldNumbers() throws {
        let root = try TestSupport.makeTemporaryDirectory("old-run")
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.copyFixture(to: root)
        let run = root.appendingPathComponent("run")
        let result = try TestSupport.runMR2CT(["train", "--run", run.path, "--threads", "1", "--convolution", "native", "--quiet"] + Self.dataArguments(root),
                                              environment: Self.environment)
        #expect(result.status == 0, "\(result.stderr)")
        // The old binary's messages for this resume, line for line.
        #expect(result.stderr == """
            mr2ct: using 2 of 2 MR volumes (13 slices) and 2 of 2 CT volumes (13 slices)
            mr2ct: resuming \(run.standardizedFileURL.path) at iteration 2 of 4
            mr2ct: validation at iteration 4: MAE 776.8 HU, ME 456.7 HU, PSNR 12.24 dB (1 volumes)

            """, "\(result.stderr)")
        let expected = root.appendingPathComponent("expected_log.ndjson"), log = run.appendingPathComponent("log.ndjson")
        #expect(try Self.records(log) == Self.records(expected))
        #expect(try Self.keyOrders(log) == Self.keyOrders(expected))
        // The set it saved is an old-format set: the same files, state.json of format mr2ct-checkpoint-1.
        let set = run.appendingPathComponent("checkpoints/iter_0000004")
        #expect(try FileManager.default.contentsOfDirectory(atPath: set.path).sorted()
                == ["D_A.safetensors", "D_B.safetensors", "G_A.safetensors", "G_B.safetensors", "optimizer_D.safetensors",
                    "optimizer_G.safetensors", "pools.safetensors", "state.json"])
        let state = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: set.appendingPathComponent("state.json"))) as? [String: Any])
        #expect(state["format"] as? String == "mr2ct-checkpoint-1")
        #expect(state["iteration"] as? Int == 4 && state["bestIteration"] as? Int == 4)
        #expect(state["bestValidationMAE"] as? Double == 776.8016841168303)
        #expect((state["configuration"] as? [String: Any])?["format"] as? String == "mr2ct-run-1")
        for link in ["latest", "best"] {
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: run.appendingPathComponent("checkpoints/\(link)").path)
                    == "iter_0000004")
        }
    }

    @Test func aFreshRunComputesTheOldNumbers() throws {
        let root = try TestSupport.makeTemporaryDirectory("old-run-fresh")
        defer { try? FileManager.default.removeItem(at: root) }
        try Self.copyFixture(to: root)
        let run = root.appendingPathComponent("fresh")
        let result = try TestSupport.runMR2CT(["train", "--run", run.path, "--threads", "1", "--convolution", "native", "--quiet"]
                                              + Self.settings + Self.dataArguments(root),
                                              environment: Self.environment)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = root.appendingPathComponent("expected_log.ndjson"), log = run.appendingPathComponent("log.ndjson")
        #expect(try Self.records(log) == Self.records(expected))
        #expect(try Self.keyOrders(log) == Self.keyOrders(expected))
        // The configuration it stores is the old run's, apart from where the data lay.
        func identity(_ url: URL) throws -> NSDictionary {
            var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            object["options"] = nil
            return object as NSDictionary
        }
        #expect(try identity(run.appendingPathComponent("config.json")) == identity(root.appendingPathComponent("run/config.json")))
        for path in ["samples/iter_0000002.png", "samples/iter_0000004.png", "report.html"] {
            #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent(path).path), "\(path)")
        }
    }
}
