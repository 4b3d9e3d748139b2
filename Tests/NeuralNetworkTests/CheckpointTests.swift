import Foundation
import Testing
import NeuralNetwork
import Safetensors
import TestSupport
import Networks

/// Strict loading (like PyTorch's `load_state_dict(strict=True)`): missing, unexpected and mis-shaped tensors are
/// listed in one line naming the file, and a failed load leaves the network untouched.
@Suite struct CheckpointTests {
    static let small = GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: 4, residualBlocks: 1)

    func values(_ network: some ParameterContainer) -> [[UInt32]] {
        network.parameters.map { $0.value.toArray().map(\.bitPattern) }
    }

    func expectFailure(_ network: some ParameterContainer, loading url: URL, mentions fragments: [String]) {
        let before = values(network)
        do {
            try network.loadSafetensors(from: url)
            Issue.record("loaded \(url.lastPathComponent)")
        } catch {
            let text = "\(error)"
            #expect(text.hasPrefix(url.path + ": "), "\(text)")
            #expect(!text.contains("\n"))
            for fragment in fragments { #expect(text.contains(fragment), "\(text) should mention \(fragment)") }
        }
        #expect(values(network) == before, "a failed load must not change the network")
    }

    @Test func refusesAnotherNetworksFileListingMissingAndUnexpectedKeys() throws {
        let generator = ResnetGenerator(GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: 8, residualBlocks: 2))
        generator.initializeWeights(seed: 1)
        expectFailure(generator, loading: TorchGoldens.url("discriminator_weights.safetensors"),
                      mentions: ["does not fit the network (20 parameters)", "missing 20 tensor(s): model.1.weight", "and 16 more", "unexpected 10 tensor(s): model.0.bias"])
    }

    @Test func refusesShapeMismatchFromAnotherConfiguration() throws {
        let generator = ResnetGenerator(GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: 4, residualBlocks: 2))
        generator.initializeWeights(seed: 1)
        expectFailure(generator, loading: TorchGoldens.url("generator_weights.safetensors"),
                      mentions: ["shape mismatch", "model.1.weight has shape [8, 1, 7, 7], the network needs [4, 1, 7, 7]"])
        // Three blocks where the file has two: the third block's tensors are missing.
        let deeper = ResnetGenerator(GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: 8, residualBlocks: 3))
        expectFailure(deeper, loading: TorchGoldens.url("generator_weights.safetensors"),
                      mentions: ["missing", "model.12.conv_block.1.weight"])
    }

    @Test func refusesNonFiniteWeightsAndExtraTensors() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let generator = ResnetGenerator(Self.small)
        generator.initializeWeights(seed: 3)
        var tensors = generator.namedTensors()
        tensors[2].values[5] = .nan
        let nan = directory.appendingPathComponent("nan.safetensors")
        try SafetensorsFile.write(tensors, metadata: [:], to: nan)
        let target = ResnetGenerator(Self.small)
        target.initializeWeights(seed: 4)
        expectFailure(target, loading: nan, mentions: ["\(tensors[2].name) holds a non-finite value", "element 5"])

        let extra = directory.appendingPathComponent("extra.safetensors")
        try SafetensorsFile.write(generator.namedTensors() + [("optimizer.step", [1], [3])], metadata: [:], to: extra)
        expectFailure(target, loading: extra, mentions: ["unexpected 1 tensor(s): optimizer.step"])

        let missing = directory.appendingPathComponent("absent.safetensors")
        expectFailure(target, loading: missing, mentions: ["no such file"])
    }

    @Test func severalNetworksInOneFileByPrefix() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = ResnetGenerator(Self.small), b = ResnetGenerator(Self.small)
        a.initializeWeights(seed: 5)
        b.initializeWeights(seed: 6)
        let url = directory.appendingPathComponent("pair.safetensors")
        try SafetensorsFile.write(a.namedTensors(prefix: "G_A.") + b.namedTensors(prefix: "G_B."), metadata: ["k": "v"], to: url)
        let archive = try SafetensorsFile.read(url)
        let a2 = ResnetGenerator(Self.small), b2 = ResnetGenerator(Self.small)
        try a2.load(from: archive, prefix: "G_A.")
        try b2.load(from: archive, prefix: "G_B.")
        #expect(values(a2) == values(a) && values(b2) == values(b))
        // Strict within the prefix, unaffected by the other prefix.
        #expect(throws: CheckpointError.self) { try a2.load(from: archive, prefix: "G_C.") }
        #expect(throws: CheckpointError.self) { try a2.loadSafetensors(from: url) }  // unprefixed: everything missing
    }

    @Test func savedFileIsAtomicAndLeavesNoTemporaryFiles() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let generator = ResnetGenerator(Self.small)
        generator.initializeWeights(seed: 8)
        let url = directory.appendingPathComponent("G.safetensors")
        try generator.saveSafetensors(to: url, metadata: ["generator": "{}"])
        try generator.saveSafetensors(to: url, metadata: ["generator": "{}", "iteration": "2"])  // replaces
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["G.safetensors"])
        #expect(try SafetensorsFile.read(url).metadata["iteration"] == "2")
        // Writing into a missing folder fails with a one-line error and creates nothing.
        let bad = directory.appendingPathComponent("missing/G.safetensors")
        #expect { try generator.saveSafetensors(to: bad, metadata: [:]) } throws: { "\($0)".contains("missing/G.safetensors") }
    }
}
