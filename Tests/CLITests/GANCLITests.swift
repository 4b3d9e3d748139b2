import Foundation
import Testing
import NIfTI
import Safetensors
import TestSupport

/// `mr2ct gan train` and `mr2ct gan sample` end to end, and the PyTorch examples/dcgan interop fixture
/// (Tests/TestSupport/Fixtures/gan, make_interop_fixture.py): a converted PyTorch generator given PyTorch's noise
/// reproduces PyTorch's images.
@Suite(.serialized)
struct GANCLITests {
    static var fixtures: URL { TestSupport.fixturesDirectory.appendingPathComponent("gan") }

    @Test func convertedPyTorchGeneratorReproducesPyTorchsImages() throws {
        let out = try TestSupport.makeTemporaryDirectory("gan-sample")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try TestSupport.runMR2CT(["gan", "sample", "--model", Self.fixtures.appendingPathComponent("dcgan_generator.safetensors").path,
                                          "--noise", Self.fixtures.appendingPathComponent("z.safetensors").path, "-o", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let ours = try SafetensorsFile.read(out.appendingPathComponent("images.safetensors")).tensor(named: "images")
        let theirs = try SafetensorsFile.read(Self.fixtures.appendingPathComponent("expected_images.safetensors")).tensor(named: "images")
        #expect(ours.shape == [6, 1, 32, 32] && ours.shape == theirs.shape)
        let difference = TorchGoldens.maximumAbsoluteDifference(ours.values, theirs.values)
        #expect(difference <= 1e-4, "max |mr2ct − PyTorch| = \(difference)")
        #expect(TorchGoldens.maximumMagnitude(theirs.values) > 0.3)  // images over the tanh range, not all ~0
        print("gan sample vs PyTorch examples/dcgan: max abs difference \(difference)")
        let pngs = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".png") }.sorted()
        #expect(pngs == (0..<6).map { String(format: "sample_%04d.png", $0) })

        // Again without --overwrite: refused, nothing changed.
        let again = try TestSupport.runMR2CT(["gan", "sample", "--model", Self.fixtures.appendingPathComponent("dcgan_generator.safetensors").path,
                                              "--noise", Self.fixtures.appendingPathComponent("z.safetensors").path, "-o", out.path])
        #expect(again.status == 1 && again.stderr.contains("exists (use --overwrite)"), "\(again.stderr)")
    }

    @Test func sampleRefusesBadInputsWithOneLine() throws {
        let out = try TestSupport.makeTemporaryDirectory("gan-bad")
        defer { try? FileManager.default.removeItem(at: out) }
        let model = Self.fixtures.appendingPathComponent("dcgan_generator.safetensors").path
        let wrongNoise = out.appendingPathComponent("z.safetensors")
        try SafetensorsFile.write([("z", [2, 7, 1, 1], [Float](repeating: 0, count: 14))], metadata: [:], to: wrongNoise)
        let cyclegan = TorchGoldens.url("generator_weights.safetensors").path
        for (arguments, fragment, status) in [
            (["--model", out.appendingPathComponent("none.safetensors").path], "none.safetensors", Int32(1)),
            (["--model", cyclegan], "no \"gan\" configuration", 1),
            (["--model", model, "--noise", wrongNoise.path], "the model needs N × 16 × 1 × 1", 1),
            (["--model", model, "--label", "3"], "--label needs a conditional", 64),
            (["--model", model, "--count", "0"], "--count", 64),
        ] {
            let r = try TestSupport.runMR2CT(["gan", "sample"] + arguments + ["-o", out.appendingPathComponent("o").path])
            #expect(r.status == status && r.stderr.contains(fragment), "\(arguments): \(r.status) \(r.stderr)")
            if status == 1 { #expect(r.stderr.hasPrefix("mr2ct: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)") }
        }
    }

    /// 2-D NIfTI patches (16 × 16 × 1) in two class folders: a cgan trains, is stopped by its length, resumes to a
    /// longer run only with the same options, and samples a named class.
    @Test func trainResumeAndSampleAConditionalGAN() throws {
        let root = try TestSupport.makeTemporaryDirectory("gan-train")
        defer { try? FileManager.default.removeItem(at: root) }
        for (c, name) in ["fat", "bone"].enumerated() {
            let folder = root.appendingPathComponent("images/\(name)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for n in 0..<6 {
                let voxels: [Float] = (0..<256).map { (v: Int) -> Float in
                    let base: Int = c == 0 ? -100 + (v % 16) * 2 : 700 + (v / 16) * 30
                    return Float(base + n)
                }
                try NIfTIFile.write(Volume(grid: GridSize(16, 16, 1), voxels: voxels, affine: .scaling(SIMD3(1, 1, 1))),
                                    to: folder.appendingPathComponent("p\(n).nii.gz"))
            }
        }
        let run = root.appendingPathComponent("run").path, images = root.appendingPathComponent("images").path
        let common = ["--image-size", "16", "--nz", "8", "--ngf", "4", "--ndf", "4", "--batch-size", "4", "--quiet"]
        let first = try TestSupport.runMR2CT(["gan", "train", "--family", "cgan", "--images", images, "--run", run,
                                              "--iterations", "4", "--intensity-range=-1024,3000"] + common)
        #expect(first.status == 0, "\(first.stderr)")
        for file in ["config.json", "log.ndjson", "report.html", "samples/iter_0000004.png", "checkpoints/latest/G.safetensors",
                     "checkpoints/latest/D.safetensors", "checkpoints/latest/optimizer_G.safetensors", "checkpoints/latest/state.json"] {
            #expect(FileManager.default.fileExists(atPath: run + "/" + file), "\(file)")
        }
        let other = try TestSupport.runMR2CT(["gan", "train", "--run", run, "--iterations", "4", "--image-size", "16", "--nz", "8",
                                              "--ngf", "8", "--ndf", "4", "--batch-size", "4", "--quiet"])
        #expect(other.status == 1 && other.stderr.contains("another configuration") && other.stderr.contains("ngf"), "\(other.stderr)")
        let sample = try TestSupport.runMR2CT(["gan", "sample", "--model", run, "--label", "bone", "--count", "3", "--seed", "5",
                                               "-o", root.appendingPathComponent("s").path])
        #expect(sample.status == 0, "\(sample.stderr)")
        let archive = try SafetensorsFile.read(root.appendingPathComponent("s/images.safetensors"))
        #expect(try archive.tensor(named: "images").shape == [3, 1, 16, 16])
        #expect(try archive.tensor(named: "labels").values == [0, 0, 0])  // "bone" sorts first
        let values = try archive.tensor(named: "images").values
        #expect(values.allSatisfy { $0 >= -1024 && $0 <= 3000 })  // in HU, the run's intensity map
        let unknown = try TestSupport.runMR2CT(["gan", "sample", "--model", run, "--label", "air", "-o", root.appendingPathComponent("t").path])
        #expect(unknown.status == 1 && unknown.stderr.contains("no class \"air\" (classes: bone, fat)"), "\(unknown.stderr)")
        let missing = try TestSupport.runMR2CT(["gan", "train", "--images", root.appendingPathComponent("nothing").path,
                                                "--run", root.appendingPathComponent("run2").path] + common)
        #expect(missing.status == 1 && missing.stderr.contains("cannot list the folder"), "\(missing.stderr)")
    }
}
