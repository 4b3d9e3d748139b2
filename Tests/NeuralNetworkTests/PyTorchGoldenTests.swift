import Foundation
import Testing
import NeuralNetwork
import Safetensors
import TestSupport
import Networks

/// The engine against PyTorch: every layer, the losses, a full ResnetGenerator and NLayerDiscriminator (forward
/// and backward) and Adam, compared with float64 PyTorch references (Tests/TestSupport/Fixtures/torch,
/// make_goldens.py).
///
/// Error measure (TorchGoldens.relativeError): max |ours − PyTorch| / max |PyTorch| over a tensor. Tolerances:
/// single layers and losses 1e-5, whole networks 1e-4, Adam updates 1e-4 of the largest update. PyTorch's own
/// float32 error on the same cases (recorded in the fixtures' metadata) is 1e-8…3e-7 for layers, about 1e-6 for
/// the networks and 2e-5 for Adam updates.
///
/// The convolution cases and both networks run twice: with the default backend choice (`.automatic`) and with
/// every convolution pass forced onto oneDNN (`.onednn`), which must meet the same tolerances.
@Suite struct PyTorchGoldenTests {
    static let layerTolerance = 1e-5
    static let networkTolerance = 1e-4

    struct LayerCase: Decodable {
        var name: String, kind: String, train: Bool
        var inputChannels: Int?, outputChannels: Int?, kernelSize: Int?, stride: Int?, padding: Int?
        var outputPadding: Int?, bias: Bool?, channels: Int?, affine: Bool?, eps: Float?, momentum: Float?
        var slope: Float?, p: Float?
        var torch_f32_error: Double
    }

    static func tensor(_ archive: SafetensorsArchive, _ name: String) throws -> Tensor {
        let t = try archive.tensor(named: name)
        return Tensor(shape: t.shape, values: t.values)
    }

    static func makeLayer(_ c: LayerCase, algorithm: ConvolutionAlgorithm = .automatic) throws -> any Layer {
        switch c.kind {
        case "conv2d":
            let conv = Conv2d(name: "layer", inputChannels: c.inputChannels!, outputChannels: c.outputChannels!,
                              kernelSize: c.kernelSize!, stride: c.stride!, padding: c.padding!, bias: c.bias!)
            conv.algorithm = algorithm
            return conv
        case "convtranspose2d":
            let conv = ConvTranspose2d(name: "layer", inputChannels: c.inputChannels!, outputChannels: c.outputChannels!,
                                       kernelSize: c.kernelSize!, stride: c.stride!, padding: c.padding!,
                                       outputPadding: c.outputPadding!, bias: c.bias!)
            conv.algorithm = algorithm
            return conv
        case "reflectionpad2d": return ReflectionPad2d(c.padding!)
        case "instancenorm2d": return InstanceNorm2d(name: "layer", channels: c.channels!, eps: c.eps!, affine: c.affine!)
        case "batchnorm2d":
            return BatchNorm2d(name: "layer", channels: c.channels!, eps: c.eps!, momentum: c.momentum!, affine: c.affine!)
        case "relu": return Activation(.relu)
        case "leakyrelu": return Activation(.leakyReLU(slope: c.slope!))
        case "tanh": return Activation(.tanh)
        case "sigmoid": return Activation(.sigmoid)
        case "dropout": return Dropout(probability: c.p!)
        default: throw SafetensorsError(path: "layers.safetensors", reason: "unknown case kind \(c.kind)")
        }
    }

    static let layerCases = TorchGoldens.cases(in: "layers.safetensors", as: [LayerCase].self)

    @Test func fixturesCoverEveryLayerKind() {
        let kinds = Set(Self.layerCases.map(\.kind))
        #expect(kinds == ["conv2d", "convtranspose2d", "reflectionpad2d", "instancenorm2d", "batchnorm2d", "relu",
                          "leakyrelu", "tanh", "sigmoid", "dropout"])
    }

    static let algorithms: [ConvolutionAlgorithm] = [.automatic, .onednn]

    @Test(arguments: layerCases.map(\.name), algorithms)
    func layerMatchesPyTorch(_ name: String, _ algorithm: ConvolutionAlgorithm) throws {
        let c = try #require(Self.layerCases.first { $0.name == name })
        if algorithm != .automatic && !c.kind.hasPrefix("conv") { return }  // only convolutions have backends
        let archive = try TorchGoldens.archive("layers.safetensors")
        let layer = try Self.makeLayer(c, algorithm: algorithm)
        for p in layer.parameters {  // "layer.weight" <- "<case>.weight"
            let field = String(p.name.dropFirst("layer.".count))
            let values = try archive.tensor(named: "\(name).\(field)")
            #expect(values.shape == p.value.shape, "\(name).\(field)")
            p.value.assign(from: Tensor(shape: values.shape, values: values.values))
            p.gradient.fill(0)
        }
        if let bn = layer as? BatchNorm2d {
            bn.runningMean.assign(from: try Self.tensor(archive, "\(name).running_mean_before"))
            bn.runningVariance.assign(from: try Self.tensor(archive, "\(name).running_var_before"))
        }
        let input = try Self.tensor(archive, "\(name).input")
        let record = LayerRecord()
        let output = layer.forward(input, record: record, mode: c.train ? .training : .inference)
        let expected = try archive.tensor(named: "\(name).output")
        #expect(output.shape == expected.shape)
        let outputError = TorchGoldens.relativeError(output.toArray(), expected.values)
        #expect(outputError <= Self.layerTolerance, "\(name) output: \(outputError)")
        var worst = outputError

        let gradInput = layer.backward(try Self.tensor(archive, "\(name).grad_output"), record: record)
        let gradInputError = TorchGoldens.relativeError(gradInput.toArray(), try archive.tensor(named: "\(name).grad_input").values)
        #expect(gradInputError <= Self.layerTolerance, "\(name) grad_input: \(gradInputError)")
        worst = max(worst, gradInputError)
        defer { print("layer \(name) [\(algorithm)]: worst error \(worst) (PyTorch float32: \(c.torch_f32_error))") }
        for p in layer.parameters {
            let field = String(p.name.dropFirst("layer.".count))
            let error = TorchGoldens.relativeError(p.gradient.toArray(), try archive.tensor(named: "\(name).grad_\(field)").values)
            #expect(error <= Self.layerTolerance, "\(name) grad_\(field): \(error)")
            worst = max(worst, error)
        }
        if let bn = layer as? BatchNorm2d {
            let mean = TorchGoldens.relativeError(bn.runningMean.toArray(), try archive.tensor(named: "\(name).running_mean").values)
            let variance = TorchGoldens.relativeError(bn.runningVariance.toArray(), try archive.tensor(named: "\(name).running_var").values)
            #expect(mean <= Self.layerTolerance && variance <= Self.layerTolerance, "\(name) running stats: \(mean), \(variance)")
        }
    }

    struct LossCase: Decodable { var name: String; var kind: String }

    @Test func lossesMatchPyTorch() throws {
        let archive = try TorchGoldens.archive("losses.safetensors")
        let cases = try TorchGoldens.metadata(archive, "cases", as: [LossCase].self)
        #expect(Set(cases.map(\.kind)) == ["mse", "l1", "bce_with_logits"])
        for c in cases {
            let input = try Self.tensor(archive, "\(c.name).input"), target = try Self.tensor(archive, "\(c.name).target")
            let gradient = Tensor(shape: input.shape)
            let value: Float = switch c.kind {
            case "mse": Loss.meanSquaredError(input, target: target, gradient: gradient)
            case "l1": Loss.l1(input, target: target, gradient: gradient)
            default: Loss.binaryCrossEntropyWithLogits(input, target: target, gradient: gradient)
            }
            let expected = try archive.tensor(named: "\(c.name).output").values[0]
            #expect(abs(Double(value) - Double(expected)) <= Self.layerTolerance * abs(Double(expected)), "\(c.name): \(value) vs \(expected)")
            let error = TorchGoldens.relativeError(gradient.toArray(), try archive.tensor(named: "\(c.name).grad_input").values)
            #expect(error <= Self.layerTolerance, "\(c.name) gradient: \(error)")
            print("loss \(c.name): value \(abs(Double(value) - Double(expected)) / abs(Double(expected))), gradient \(error)")
            if c.name == "mse_target_one" {  // the LSGAN form: a constant target
                let constantGradient = Tensor(shape: input.shape)
                let constant = Loss.meanSquaredError(input, target: 1, gradient: constantGradient)
                #expect(abs(Double(constant) - Double(expected)) <= Self.layerTolerance * abs(Double(expected)))
                #expect(TorchGoldens.relativeError(constantGradient.toArray(), gradient.toArray()) <= 1e-6)
            }
        }
    }

    struct NetworkInfo: Decodable { var torch_f32_error: Double; var zero_gradients: [String] }

    /// Forward (inference and training) and backward of a whole network against PyTorch. Parameters whose exact
    /// gradient is 0 (biases right before an InstanceNorm) must come out as float32 noise: below 1e-5 of the
    /// largest parameter gradient.
    func checkNetwork(_ network: SequentialNetwork, weights: String, io: String, algorithm: ConvolutionAlgorithm) throws {
        network.setConvolutionAlgorithm(algorithm)
        let metadata = try network.loadSafetensors(from: TorchGoldens.url(weights))
        #expect(!metadata.isEmpty)
        let archive = try TorchGoldens.archive(io)
        let info = try TorchGoldens.metadata(archive, "zero_gradients", as: [String].self)
        let input = try Self.tensor(archive, "input")
        let expectedOutput = try archive.tensor(named: "output").values

        let inferred = network.infer(input)
        let inferError = TorchGoldens.relativeError(inferred.toArray(), expectedOutput)
        #expect(inferError <= Self.networkTolerance, "\(io) infer: \(inferError)")
        #expect(TorchGoldens.maximumAbsoluteDifference(inferred.toArray(), expectedOutput) <= 1e-4)

        network.zeroGradients()
        let record = LayerRecord()
        let output = network.forward(input, record: record)
        let outputError = TorchGoldens.relativeError(output.toArray(), expectedOutput)
        #expect(outputError <= Self.networkTolerance, "\(io) training forward: \(outputError)")
        let gradInput = Tensor(shape: input.shape)
        network.backward(try Self.tensor(archive, "grad_output"), record: record, gradInput: gradInput)
        let gradInputError = TorchGoldens.relativeError(gradInput.toArray(), try archive.tensor(named: "grad_input").values)
        #expect(gradInputError <= Self.networkTolerance, "\(io) grad_input: \(gradInputError)")

        let largest = network.parameters.map { TorchGoldens.maximumMagnitude($0.gradient.toArray()) }.max() ?? 0
        var worst = (0.0, "")
        for p in network.parameters {
            let key = "grad." + p.name
            let ours = p.gradient.toArray()
            if info.contains(key) {
                #expect(TorchGoldens.maximumMagnitude(ours) <= 1e-5 * largest, "\(io) \(key) should be ~0")
                continue
            }
            let error = TorchGoldens.relativeError(ours, try archive.tensor(named: key).values)
            if error > worst.0 { worst = (error, key) }
            #expect(error <= Self.networkTolerance, "\(io) \(key): \(error)")
        }
        print("\(io) [\(algorithm)]: infer \(inferError), forward \(outputError), grad_input \(gradInputError), worst parameter gradient \(worst.0) (\(worst.1))")
    }

    @Test(arguments: algorithms)
    func resnetGeneratorMatchesPyTorch(_ algorithm: ConvolutionAlgorithm) throws {
        let configuration = try TorchGoldens.metadata(try TorchGoldens.archive("generator_io.safetensors"), "generator",
                                                      as: GeneratorConfiguration.self)
        #expect(configuration == GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: 8, residualBlocks: 2))
        try checkNetwork(ResnetGenerator(configuration), weights: "generator_weights.safetensors", io: "generator_io.safetensors",
                         algorithm: algorithm)
    }

    @Test(arguments: algorithms)
    func nLayerDiscriminatorMatchesPyTorch(_ algorithm: ConvolutionAlgorithm) throws {
        let configuration = try TorchGoldens.metadata(try TorchGoldens.archive("discriminator_io.safetensors"), "discriminator",
                                                      as: DiscriminatorConfiguration.self)
        try checkNetwork(NLayerDiscriminator(configuration), weights: "discriminator_weights.safetensors",
                         io: "discriminator_io.safetensors", algorithm: algorithm)
    }

    /// Three Adam steps (betas 0.5/0.999, eps 1e-8, lr 2e-4, 2e-4, 1e-4) against torch.optim.Adam, including
    /// gradients of 0 and at the scale of eps, and a learning-rate change between steps.
    @Test func adamMatchesPyTorch() throws {
        let archive = try TorchGoldens.archive("adam.safetensors")
        let names = try TorchGoldens.metadata(archive, "parameters", as: [String].self)
        let rates = try TorchGoldens.metadata(archive, "learning_rates", as: [Float].self)
        var initial: [[Float]] = []
        let parameters = try names.map { name in
            let t = try archive.tensor(named: name + ".initial")
            let p = Parameter(name: name, shape: t.shape)
            p.value.assign(from: Tensor(shape: t.shape, values: t.values))
            initial.append(t.values)
            return p
        }
        let adam = Adam(parameters: parameters, learningRate: rates[0], beta1: 0.5, beta2: 0.999, eps: 1e-8)
        var worstUpdate = 0.0
        defer { print("Adam: worst update error \(worstUpdate)") }
        for step in 1 ... 3 {
            adam.learningRate = rates[step - 1]
            for p in parameters {
                let g = try archive.tensor(named: "\(p.name).grad.\(step)")
                p.gradient.assign(from: Tensor(shape: g.shape, values: g.values))
            }
            adam.step()
            for (p, start) in zip(parameters, initial) {
                let expected = try archive.tensor(named: "\(p.name).after.\(step)").values
                let ours = p.value.toArray()
                // Compare the updates (value − initial), which are 1e-4 … 1e-3 of the values themselves.
                let error = TorchGoldens.relativeError(zip(ours, start).map { $0 - $1 }, zip(expected, start).map { $0 - $1 })
                #expect(error <= 1e-4, "\(p.name) after step \(step): update error \(error)")
                worstUpdate = max(worstUpdate, error)
            }
        }
        #expect(adam.stepCount == 3)
        for (p, moments) in zip(parameters, adam.moments) {
            let first = TorchGoldens.relativeError(moments.first.toArray(), try archive.tensor(named: "\(p.name).exp_avg").values)
            let second = TorchGoldens.relativeError(moments.second.toArray(), try archive.tensor(named: "\(p.name).exp_avg_sq").values)
            print("Adam \(p.name): exp_avg \(first), exp_avg_sq \(second)")
            #expect(first <= 1e-5, "\(p.name) exp_avg: \(first)")
            // PyTorch scales g² by 1 − β₂ computed in double (Float(0.001)), and so does the engine.
            #expect(second <= 1e-6, "\(p.name) exp_avg_sq: \(second)")
        }
    }
}
