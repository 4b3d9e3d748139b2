import Foundation
import Testing
import TestSupport

/// `mr2ct train --preset`: listed in the help, stored in the run, explicit options override it.
@Suite("mr2ct train --preset (binary)", .serialized)
struct PresetCLITests {
    @Test func helpListsThePresets() throws {
        let help = try TestSupport.runMR2CT(["help", "train"])
        #expect(help.status == 0)
        let text = help.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
        #expect(text.contains("--preset <NAME>"))
        #expect(text.contains("reference: the reference CycleGAN"))
        #expect(text.contains("sct: synthetic CT on real scans"))
        let bad = try TestSupport.runMR2CT(["train", "--preset", "nosuch", "--run", "/tmp/x"])
        #expect(bad.status == 64)
    }

    @Test func sctIsStoredAndExplicitOptionsOverrideIt() throws {
        let root = try TestSupport.makeTemporaryDirectory("preset-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let run = root.appendingPathComponent("run")
        let arguments = ["train", "--preset", "sct", "--mr", data.mr.path, "--ct", data.ct.path, "--run", run.path,
                         "--slice-size", "32", "--ngf", "8", "--ndf", "8", "--residual-blocks", "1",
                         "--discriminator-layers", "2", "--iterations", "2", "--threads", "1", "--quiet"]
        let result = try TestSupport.runMR2CT(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let config = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(config["preset"] as? String == "sct")
        #expect(config["augment"] as? Bool == true)
        // --slice-size 32 overrides the data-derived size, and the preset's 96² windows shrink to it.
        #expect(config["cropSize"] as? Int == 32)
        let preprocessing = try #require(config["preprocessing"] as? [String: Any])
        #expect(preprocessing["sliceSize"] as? Int == 32)
        #expect(preprocessing["targetSpacing"] as? Double == 1.5)  // the test volumes are 1 mm in plane
        let mapping = try #require(preprocessing["ctMapping"] as? [String: Any])
        #expect(mapping["kind"] as? String == "piecewiseLinear")
        let model = try #require(config["model"] as? [String: Any])
        #expect((model["generator"] as? [String: Any])?["ngf"] as? Int == 8)
        #expect(model["lambdaIdentity"] as? Double == 0.5)
        #expect((config["length"] as? [String: Any])?["iterations"] as? Int == 2)

        // The model file carries the mapping, so conversion inverts the same map.
        let convert = try TestSupport.runMR2CT(["convert", "--model", run.path, data.mr.appendingPathComponent("mr_0.nii.gz").path,
                                                "-o", root.appendingPathComponent("sct").path, "--threads", "1"])
        #expect(convert.status == 0, "\(convert.stderr)")

        // Another preset on the same run folder: a usage error naming both.
        let other = try TestSupport.runMR2CT(["train", "--preset", "reference", "--run", run.path, "--resume"])
        #expect(other.status == 64)
        #expect(other.stderr.contains("--preset sct"), "\(other.stderr)")
    }
}
