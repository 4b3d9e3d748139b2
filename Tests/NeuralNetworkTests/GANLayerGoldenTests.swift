import Foundation
import Testing
import MR2CTSupport
import NeuralNetwork
import Safetensors
import TestSupport
import Networks

/// The layers the GAN families add to the engine (Linear, Embedding, Reshape, channel concatenation) against PyTorch
/// float64 references (Tests/TestSupport/Fixtures/torch/gan_layers.safetensors, make_gan_goldens.py), BatchNorm's
/// buffers against a PyTorch state_dict, and the per-layer-kind initialisation against the rule it replaced.
/// Error measure and tolerance as PyTorchGoldenTests: TorchGoldens.relativeError ≤ 1e-5 per tensor.
@Suite struct GANLayerGoldenTests {
    static let tolerance = 1e-5

    struct LayerCase: Decodable {
        var name: String, kind: String
        var inputFeatures: Int?, outputFeatures: Int?, bias: Bool?, count: Int?, dimension: Int?, shape: [Int]?
        var torch_f32_error: Double
    }

    static let cases = TorchGoldens.cases(in: "gan_layers.safetensors", as: [LayerCase].self)

    static func tensor(_ archive: SafetensorsArchive, _ name: String) throws -> Tensor {
        let t = try archive.tensor(named: name)
        return Tensor(shape: t.shape, values: t.values)
    }

    static func check(_ actual: Tensor, _ archive: SafetensorsArchive, _ name: String) throws -> Double {
        let expected = try archive.tensor(named: name)
        #expect(actual.shape == expected.shape, "\(name): shape \(actual.shape) vs \(expected.shape)")
        let error = TorchGoldens.relativeError(actual.toArray(), expected.values)
        #expect(error <= tolerance, "\(name): \(error)")
        return error
    }

    @Test func fixturesCoverEveryNewLayerKind() {
        #expect(Set(Self.cases.map(\.kind)) == ["linear", "embedding", "reshape", "concat"])
    }

    @Test(arguments: cases.map(\.name))
    func layerMatchesPyTorch(_ name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let archive = try TorchGoldens.archive("gan_layers.safetensors")
        let gradOutput = try Self.tensor(archive, "\(name).grad_output")
        var worst = 0.0
        if c.kind == "concat" {
            let a = try Self.tensor(archive, "\(name).input0"), b = try Self.tensor(archive, "\(name).input1")
            let concat = ConcatChannels(), record = LayerRecord()
            worst = max(worst, try Self.check(concat.forward(a, b, record: record), archive, "\(name).output"))
            let ga = Tensor(shape: a.shape), gb = Tensor(shape: b.shape)
            concat.backward(UnsafePointer(gradOutput.data.baseAddress!), gradA: ga.data.baseAddress, gradB: gb.data.baseAddress,
                            record: record)
            worst = max(worst, try Self.check(ga, archive, "\(name).grad_input0"))
            worst = max(worst, try Self.check(gb, archive, "\(name).grad_input1"))
            print("layer \(name): worst error \(worst)")
            return
        }
        let layer: any Layer = switch c.kind {
        case "linear": Linear(name: "layer", inputFeatures: c.inputFeatures!, outputFeatures: c.outputFeatures!, bias: c.bias!)
        case "embedding": Embedding(name: "layer", count: c.count!, dimension: c.dimension!)
        default: Reshape(c.shape!)
        }
        for p in layer.parameters {
            let field = String(p.name.dropFirst("layer.".count))
            p.value.assign(from: try Self.tensor(archive, "\(name).\(field)"))
            p.gradient.fill(0)
        }
        let input = try Self.tensor(archive, "\(name).input")
        let record = LayerRecord()
        worst = max(worst, try Self.check(layer.forward(input, record: record), archive, "\(name).output"))
        let gradInput = layer.backward(gradOutput, record: record)
        if c.kind != "embedding" {  // indices have no gradient
            worst = max(worst, try Self.check(gradInput, archive, "\(name).grad_input"))
        } else {
            #expect(gradInput.toArray().allSatisfy { $0 == 0 })
        }
        for p in layer.parameters {
            let field = String(p.name.dropFirst("layer.".count))
            worst = max(worst, try Self.check(p.gradient, archive, "\(name).grad_\(field)"))
        }
        print("layer \(name): worst error \(worst) (PyTorch float32: \(c.torch_f32_error))")
    }

    /// A PyTorch BatchNorm2d state_dict (num_batches_tracked as I64) loads into the engine's buffers, an eval-mode
    /// pass with those statistics equals PyTorch's, and a save/load round trip keeps every buffer bit for bit.
    @Test func batchNormBuffersLoadFromPyTorchAndRoundTrip() throws {
        let archive = try TorchGoldens.archive("batchnorm_state.safetensors")
        #expect(archive.info(named: "bn.num_batches_tracked")?.dtype == .i64)
        let network = SequentialNetwork(network: Sequential([BatchNorm2d(name: "bn", channels: 3)]))
        #expect(network.buffers.map(\.name) == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"])
        try network.load(from: archive, prefix: "", requireAllTensorsUsed: false)
        let bn = try #require(network.network.layers[0] as? BatchNorm2d)
        #expect(bn.batchesTracked == 3)
        _ = try Self.check(bn.runningMean, archive, "bn.running_mean")
        _ = try Self.check(bn.runningVariance, archive, "bn.running_var")
        let output = network.infer(try Self.tensor(archive, "input"))
        _ = try Self.check(output, archive, "output")

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bn-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try network.saveSafetensors(to: url, metadata: [:])
        let saved = try SafetensorsFile.read(url)
        #expect(saved.names.sorted() == ["bn.bias", "bn.num_batches_tracked", "bn.running_mean", "bn.running_var", "bn.weight"])
        let copy = SequentialNetwork(network: Sequential([BatchNorm2d(name: "bn", channels: 3)]))
        try copy.loadSafetensors(from: url)
        for (a, b) in zip(network.buffers + network.parameters.map { Buffer(name: $0.name, value: $0.value) },
                          copy.buffers + copy.parameters.map { Buffer(name: $0.name, value: $0.value) }) {
            #expect(a.value.toArray().map(\.bitPattern) == b.value.toArray().map(\.bitPattern), "\(a.name)")
        }
        // A file without the buffers no longer fits (strict, like load_state_dict).
        let parametersOnly = FileManager.default.temporaryDirectory.appendingPathComponent("bn-p-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: parametersOnly) }
        try SafetensorsFile.write(network.parameters.map { ($0.name, $0.value.shape, $0.value.toArray()) }, metadata: [:],
                                  to: parametersOnly)
        #expect(throws: CheckpointError.self) { try copy.loadSafetensors(from: parametersOnly) }
    }

    /// Training passes move the running statistics and count batches; inference passes do not; initialisation
    /// resets them (PyTorch's reset_running_stats).
    @Test func batchNormCountsTrainingPassesOnly() {
        let bn = BatchNorm2d(name: "bn", channels: 2)
        let x = Tensor(shape: [2, 2, 3, 3], values: (0..<36).map { Float($0) / 7 })
        _ = bn.forward(x, record: LayerRecord(), mode: .training)
        _ = bn.forward(x, record: LayerRecord(), mode: .training)
        _ = bn.forward(x, record: LayerRecord(), mode: .inference)
        #expect(bn.batchesTracked == 2)
        #expect(bn.runningMean.toArray() != [0, 0])
        var initializer = WeightInitializer(seed: 1)
        bn.initializeWeights(&initializer)
        #expect(bn.batchesTracked == 0 && bn.runningMean.toArray() == [0, 0] && bn.runningVariance.toArray() == [1, 1])
    }

    /// The rule the per-layer initialisation replaced (by tensor rank and a `.weight` suffix), kept here as the
    /// reference: the CycleGAN networks must come out bit for bit the same.
    static func rankRule(_ network: SequentialNetwork, seed: UInt64) -> [[UInt32]] {
        var random = SeededRandom(seed: seed)
        return network.parameters.map { p in
            (0..<p.value.count).map { _ -> Float in
                if p.value.shape.count == 4 { return Float(random.nextNormal(mean: 0, standardDeviation: 0.02)) }
                if p.name.hasSuffix(".weight") { return Float(random.nextNormal(mean: 1, standardDeviation: 0.02)) }
                return 0
            }.map(\.bitPattern)
        }
    }

    @Test func perLayerInitialisationEqualsTheRankRuleOnCycleGANNetworks() {
        let networks: [SequentialNetwork] = [
            ResnetGenerator(GeneratorConfiguration(inputChannels: 3, outputChannels: 1, ngf: 8, residualBlocks: 2, dropout: true)),
            NLayerDiscriminator(DiscriminatorConfiguration(inputChannels: 1, ndf: 8, layers: 3)),
            // InstanceNorm with affine parameters and a BatchNorm: the scale draws N(1, 0.02) in order.
            SequentialNetwork(network: Sequential([
                Conv2d(name: "0", inputChannels: 2, outputChannels: 3, kernelSize: 3),
                InstanceNorm2d(name: "1", channels: 3, affine: true),
                ConvTranspose2d(name: "2", inputChannels: 3, outputChannels: 2, kernelSize: 4, stride: 2, padding: 1, bias: false),
                BatchNorm2d(name: "3", channels: 2),
            ])),
        ]
        for (index, network) in networks.enumerated() {
            for p in network.parameters { p.value.fill(7); p.gradient.fill(7) }
            network.initializeWeights(seed: 42 + UInt64(index))
            let ours = network.parameters.map { $0.value.toArray().map(\.bitPattern) }
            #expect(ours == Self.rankRule(network, seed: 42 + UInt64(index)), "network \(index)")
            #expect(network.parameters.allSatisfy { $0.gradient.toArray().allSatisfy { $0 == 0 } })
        }
    }

    @Test func linearAndEmbeddingInitialiseByKind() {
        let linear = Linear(name: "fc", inputFeatures: 300, outputFeatures: 40)
        let embedding = Embedding(name: "emb", count: 100, dimension: 120)
        linear.bias!.value.fill(3)
        var initializer = WeightInitializer(seed: 9)
        linear.initializeWeights(&initializer)
        embedding.initializeWeights(&initializer)
        func deviation(_ t: Tensor) -> Double {
            let v = t.toArray().map(Double.init), mean = v.reduce(0, +) / Double(v.count)
            return (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        }
        #expect(abs(deviation(linear.weight.value) - 0.02) < 0.001)  // 12 000 draws: σ within 5 %
        #expect(linear.bias!.value.toArray().allSatisfy { $0 == 0 })
        #expect(abs(deviation(embedding.weight.value) - 1) < 0.03)
    }
}
