import Foundation
import NIfTI
import Testing
import TestSupport

/// `mr2ct train --paired-mr --paired-ct` end to end: the built binary, tiny networks (issue 18 item 2).
@Suite("mr2ct train, semi-supervised (binary)", .serialized)
struct SemiSupervisedTrainCLITests {
    static func folders(in root: URL) throws -> (unpaired: (mr: URL, ct: URL), pairs: (mr: URL, ct: URL)) {
        (try TrainingVolumes.writeUnpairedFolders(in: root), try TrainingVolumes.writePairedFolders(in: root, count: 2))
    }

    static func arguments(_ data: (unpaired: (mr: URL, ct: URL), pairs: (mr: URL, ct: URL)), run: URL, iterations: Int) -> [String] {
        TrainCLITests.tinyArguments(data: data.unpaired, run: run, iterations: iterations)
            + ["--paired-mr", data.pairs.mr.path, "--paired-ct", data.pairs.ct.path]
    }

    /// Trains, logs G_sup, says so on stderr; `convert` takes the run folder as for an unpaired run; `--resume` alone
    /// continues it (the pair folders come from the run).
    @Test func trainsAndConverts() throws {
        let root = try TestSupport.makeTemporaryDirectory("semi-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try Self.folders(in: root)
        let run = root.appendingPathComponent("run")
        let result = try TestSupport.runMR2CT(Self.arguments(data, run: run, iterations: 3) + ["--lambda-supervised", "50", "--l1-in-body"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("semi-supervised: 2 registered pairs ("), "\(result.stderr)")
        #expect(result.stderr.contains("λ_sup 50.0 inside the body"), "\(result.stderr)")
        let lines = TrainCLITests.trainLines(run)
        #expect(lines.count == 3 && lines.allSatisfy { ($0["G_sup"] as? Double ?? -1) > 0 }, "\(lines)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        let model = config?["model"] as? [String: Any]
        #expect((model?["supervised"] as? [String: Any])?["inBody"] as? Bool == true)
        let out = root.appendingPathComponent("sct")
        let convert = try TestSupport.runMR2CT(["convert", "--model", run.path, data.unpaired.mr.appendingPathComponent("mr_0.nii.gz").path,
                                                "-o", out.path])
        #expect(convert.status == 0, "\(convert.stderr)")
        let written = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".nii.gz") }
        #expect(written.count == 1)
        let sct = try NIfTIFile.read(out.appendingPathComponent(written.first ?? "missing"))
        #expect(sct.grid == (try NIfTIFile.read(data.unpaired.mr.appendingPathComponent("mr_0.nii.gz"))).grid)
        let extend = try TestSupport.runMR2CT(["train", "--run", run.path, "--resume", "--iterations", "4", "--threads", "1"])
        #expect(extend.status == 0, "\(extend.stderr)")
        #expect(TrainCLITests.trainLines(run).count == 4)
    }

    /// Bad option combinations: exit 64, the reason on the `Error:` line.
    @Test func usageErrors() throws {
        let root = try TestSupport.makeTemporaryDirectory("semi-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try Self.folders(in: root)
        let run = root.appendingPathComponent("run")
        let base = TrainCLITests.tinyArguments(data: data.unpaired, run: run, iterations: 2)
        let cases: [([String], String)] = [
            (base + ["--paired-mr", data.pairs.mr.path], "--paired-mr needs --paired-ct"),
            (base + ["--paired-ct", data.pairs.ct.path], "--paired-ct needs --paired-mr"),
            (Self.arguments(data, run: run, iterations: 2) + ["--lambda-supervised=-1"], "--lambda-supervised must be a number ≥ 0"),
            (Self.arguments(data, run: run, iterations: 2) + ["--lambda-supervised", "nan"], "--lambda-supervised must be a number ≥ 0"),
            (base + ["--lambda-supervised", "10"], "need --paired-mr and --paired-ct"),
            (base + ["--l1-in-body"], "--l1-in-body needs --paired, or --paired-mr and --paired-ct"),
            (PairedTrainCLITests.arguments(data: data.pairs, run: run, iterations: 2) + ["--paired-mr", data.pairs.mr.path],
             "--paired-mr is a semi-supervised (CycleGAN) option; it does not apply with --paired"),
        ]
        for (arguments, reason) in cases {
            let r = try TestSupport.runMR2CT(arguments)
            #expect(r.status == 64, "\(reason): \(r.stderr)")
            let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
            #expect(first.hasPrefix("Error: ") && first.contains(reason), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").filter { $0.contains(reason) }.count == 1)
        }
        #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("config.json").path))
    }

    /// A pair on two grids: exit 1, one line naming the MR and its CT and what differs.
    @Test func aPairOnTwoGridsNamesBothFiles() throws {
        let root = try TestSupport.makeTemporaryDirectory("semi-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try Self.folders(in: root)
        let ct = data.pairs.ct.appendingPathComponent("case_0.nii.gz")
        try NIfTIFile.write(TrainingVolumes.head(ct: true, grid: GridSize(36, 36, 7), seed: 3), to: ct)
        let r = try TestSupport.runMR2CT(Self.arguments(data, run: root.appendingPathComponent("run"), iterations: 2))
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 1, "\(r.stderr)")
        let mr = data.pairs.mr.appendingPathComponent("case_0.nii.gz")
        #expect(lines.first?.hasPrefix("mr2ct: \(mr.path): its CT \(ct.path) is on another grid: dims 36×36×6 vs 36×36×7") == true, "\(r.stderr)")
    }
}
