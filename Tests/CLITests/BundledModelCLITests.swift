import Foundation
import Testing
import Safetensors
import TestSupport

/// The bundled models reproduce the held-out figures SampleData/model/README.md records for them: `mr2ct convert`
/// of the five held-out phantoms (sub-101 … sub-105) with `--mirror-average`, scored by `mr2ct evaluate` against
/// their true CTs, as a user runs the commands of that README.
@Suite(.serialized)
struct BundledModelCLITests {
    static var sampleData: URL { TestSupport.packageRoot.appendingPathComponent("SampleData") }
    static var heldout: URL { sampleData.appendingPathComponent("phantoms/heldout") }
    static func model(_ name: String) -> String { sampleData.appendingPathComponent("model/\(name)").path }

    /// `x` rounded to one decimal, as the README records figures.
    static func oneDecimal(_ x: Double) -> Double { (x * 10).rounded() / 10 }

    /// Converts the held-out MRs with `models` (mirror-averaged) and returns evaluate's summary line.
    static func heldoutSummary(_ models: [String]) throws -> [String: Any] {
        let root = try TestSupport.makeTemporaryDirectory("mr2ct-bundled")
        defer { try? FileManager.default.removeItem(at: root) }
        let out = root.appendingPathComponent("sct")
        let convert = try TestSupport.runMR2CT(["convert"] + models.flatMap { ["--model", $0] } +
            ["--quiet", "--mirror-average", heldout.appendingPathComponent("mr").path, "-o", out.path])
        #expect(convert.status == 0, "\(convert.stderr)")
        let evaluate = try TestSupport.runMR2CT(["evaluate", "--pred", out.path, "--ref", heldout.appendingPathComponent("ct").path])
        #expect(evaluate.status == 0, "\(evaluate.stderr)")
        let lines = evaluate.stdout.split(separator: "\n")
        let summary = try #require(lines.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(summary["kind"] as? String == "summary")
        #expect(summary["volumes"] as? Int == 5 && summary["failed"] as? Int == 0)
        return summary
    }

    /// Issue 18's bar: the bundled paired model at ≤ 80 HU on the held-out phantoms, and exactly the figure its
    /// README records (68.0 ± 6.4 HU).
    @Test func pairedModelReproducesItsHeldOutFigure() throws {
        let summary = try Self.heldoutSummary([Self.model("phantom_paired_G.safetensors")])
        let mae = try #require(summary["mae_mean"] as? Double), sd = try #require(summary["mae_sd"] as? Double)
        #expect(mae <= 80)
        #expect(Self.oneDecimal(mae) == 68.0, "recorded 68.0 HU, now \(mae)")
        #expect(Self.oneDecimal(sd) == 6.4, "recorded ± 6.4 HU, now \(sd)")
    }

    /// The demo's unpaired ensemble: 140.0 ± 9.4 HU as recorded.
    @Test func unpairedEnsembleReproducesItsHeldOutFigure() throws {
        let summary = try Self.heldoutSummary([Self.model("phantom_G_A.safetensors"), Self.model("phantom_G_A_2.safetensors")])
        let mae = try #require(summary["mae_mean"] as? Double), sd = try #require(summary["mae_sd"] as? Double)
        #expect(Self.oneDecimal(mae) == 140.0, "recorded 140.0 HU, now \(mae)")
        #expect(Self.oneDecimal(sd) == 9.4, "recorded ± 9.4 HU, now \(sd)")
    }

    /// The paired model file says how it was trained.
    @Test func pairedModelRecordsPairedTraining() throws {
        let metadata = try SafetensorsFile.read(URL(fileURLWithPath: Self.model("phantom_paired_G.safetensors"))).metadata
        #expect(metadata["training"] == "paired")
        #expect(metadata["role"] == "G")
    }
}
