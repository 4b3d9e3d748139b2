import Foundation
import Testing
import NeuralNetwork
import Safetensors
import TestSupport
import Networks

/// Generators move between MR2CT and PyTorch (pytorch-CycleGAN-and-pix2pix) through safetensors.
///
/// PyTorch → MR2CT: generator_weights.safetensors was written by Pipelines/convert_pytorch_generator.py from a
/// `torch.save(net.state_dict())` .pth; it loads strictly and gives PyTorch's output (max abs diff ≤ 1e-4).
/// MR2CT → PyTorch: a file MR2CT writes has exactly PyTorch's key set, shapes and dtype (F32), checked here;
/// that it loads with `load_state_dict(strict=True)` and reproduces MR2CT's output is checked by
/// Pipelines/check_mr2ct_generator_in_pytorch.py on the files this test leaves in $MR2CT_INTEROP_DIR when set.
@Suite struct PyTorchInteropTests {
    static let configuration = GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: 8, residualBlocks: 2)

    @Test func pytorchExportedGeneratorLoadsAndGivesPyTorchOutput() throws {
        let generator = ResnetGenerator(Self.configuration)
        let metadata = try generator.loadSafetensors(from: TorchGoldens.url("generator_weights.safetensors"))
        let stored = try JSONDecoder().decode(GeneratorConfiguration.self, from: Data(try #require(metadata["generator"]).utf8))
        #expect(stored == Self.configuration)
        #expect(metadata["direction"] == "MR->CT")
        #expect(metadata["preprocessing"] != nil)
        let io = try TorchGoldens.archive("generator_io.safetensors")
        let input = try io.tensor(named: "input")
        let output = generator.infer(Tensor(shape: input.shape, values: input.values))
        let difference = TorchGoldens.maximumAbsoluteDifference(output.toArray(), try io.tensor(named: "output").values)
        #expect(difference <= 1e-4, "max |MR2CT − PyTorch| = \(difference)")
        print("PyTorch-exported generator in MR2CT: max abs difference \(difference)")
    }

    /// With $MR2CT_INTEROP_DIR holding pytorch_generator.safetensors (+ _io) from
    /// `check_mr2ct_generator_in_pytorch.py --export DIR --ngf 64 --blocks 9 --size 256`: the same check at full size.
    /// It needs PyTorch to make its files, so CI (which has no PyTorch) reports it as skipped with this reason; when
    /// the variable is set, missing files are a failure, not a silent pass.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["MR2CT_INTEROP_DIR"] != nil,
                   "needs MR2CT_INTEROP_DIR from check_mr2ct_generator_in_pytorch.py --export (PyTorch)"))
    func exportedFullSizeGeneratorFromInteropDirectory() throws {
        let directory = URL(fileURLWithPath: ProcessInfo.processInfo.environment["MR2CT_INTEROP_DIR"]!)
        let url = directory.appendingPathComponent("pytorch_generator.safetensors")
        try #require(FileManager.default.fileExists(atPath: url.path), "MR2CT_INTEROP_DIR has no \(url.lastPathComponent)")
        let header = try SafetensorsFile.read(url)
        let configuration = try JSONDecoder().decode(GeneratorConfiguration.self, from: Data(try #require(header.metadata["generator"]).utf8))
        let generator = ResnetGenerator(configuration)
        try generator.loadSafetensors(from: url)
        let io = try SafetensorsFile.read(directory.appendingPathComponent("pytorch_generator_io.safetensors"))
        let input = try io.tensor(named: "input")
        let output = generator.infer(Tensor(shape: input.shape, values: input.values))
        let difference = TorchGoldens.maximumAbsoluteDifference(output.toArray(), try io.tensor(named: "output").values)
        #expect(difference <= 1e-4)
        print("PyTorch-exported \(configuration) on \(input.shape) in MR2CT: max abs difference \(difference)")
    }

    @Test func writtenGeneratorHasPyTorchsKeysShapesAndDType() throws {
        let directory: URL
        if let keep = ProcessInfo.processInfo.environment["MR2CT_INTEROP_DIR"] {
            directory = URL(fileURLWithPath: keep)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } else {
            directory = try TestSupport.makeTemporaryDirectory()
        }
        // $MR2CT_INTEROP_SIZE="ngf,blocks,size" writes a bigger generator for the Python check (default 8,2,32).
        let size = (ProcessInfo.processInfo.environment["MR2CT_INTEROP_SIZE"] ?? "8,2,32").split(separator: ",").compactMap { Int($0) }
        let configuration = size.count == 3
            ? GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: size[0], residualBlocks: size[1]) : Self.configuration
        let side = size.count == 3 ? size[2] : 32
        let generator = ResnetGenerator(configuration)
        generator.initializeWeights(seed: 42)
        for p in generator.parameters where p.name.hasSuffix(".bias") {  // non-zero biases, so a lost bias shows
            for i in 0 ..< p.value.count { p.value.data[i] = Float(i % 7) * 0.01 - 0.03 }
        }
        let url = directory.appendingPathComponent("mr2ct_generator.safetensors")
        let configurationJSON = String(decoding: try JSONEncoder().encode(configuration), as: UTF8.self)
        try generator.saveSafetensors(to: url, metadata: ["generator": configurationJSON, "direction": "MR->CT"])

        let ours = try SafetensorsFile.read(url)
        let pytorch = try TorchGoldens.archive("generator_weights.safetensors")
        if configuration == Self.configuration {  // the key set, shapes and dtype of PyTorch's own file
            #expect(Set(ours.names) == Set(pytorch.names), "same state_dict keys")
            #expect(ours.names.count == pytorch.names.count)
            for name in pytorch.names {
                #expect(ours.info(named: name)?.shape == pytorch.info(named: name)?.shape, "\(name)")
                #expect(ours.info(named: name)?.dtype == .f32, "\(name)")
            }
        }
        #expect(ours.metadata["generator"] == configurationJSON)

        // Round trip: bit-identical parameters, identical output.
        let reloaded = ResnetGenerator(configuration)
        try reloaded.loadSafetensors(from: url)
        for (a, b) in zip(generator.parameters, reloaded.parameters) {
            #expect(a.value.toArray().map(\.bitPattern) == b.value.toArray().map(\.bitPattern), "\(a.name)")
        }
        let inputValues = (0 ..< 2 * side * side).map { Float(sin(Double($0) * 0.37)) }
        let input = Tensor(shape: [2, 1, side, side], values: inputValues)
        let output = generator.infer(input)
        #expect(reloaded.infer(input).toArray() == output.toArray())
        // Input and MR2CT's output, for Pipelines/check_mr2ct_generator_in_pytorch.py.
        try SafetensorsFile.write([("input", input.shape, inputValues), ("output", output.shape, output.toArray())],
                                  metadata: [:], to: directory.appendingPathComponent("mr2ct_generator_io.safetensors"))
        if ProcessInfo.processInfo.environment["MR2CT_INTEROP_DIR"] == nil {
            try? FileManager.default.removeItem(at: directory)
        }
    }
}
