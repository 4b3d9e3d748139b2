import Foundation
import Testing
import MR2CTSupport
import Safetensors
import TestSupport
@testable import NeuralNetwork
import Networks

/// The Winograd F(2×2, 3×3) path of `Conv2d` (forward and backward-data; backward-weights stays im2col):
/// against PyTorch float64 references at residual-block channel counts (winograd.safetensors,
/// make_winograd_goldens.py) and against the im2col path on shapes the goldens do not cover.
@Suite struct WinogradTests {
    struct Case: Decodable {
        var name: String, inputChannels: Int, outputChannels: Int, height: Int, width: Int, paddingMode: String
        var torch_f32_error: Double
    }

    static let cases = TorchGoldens.cases(in: "winograd.safetensors", as: [Case].self)

    @Test func fixturesArePresent() { #expect(Self.cases.count == 3) }

    @Test(arguments: cases.map(\.name))
    func matchesPyTorch(_ name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let archive = try TorchGoldens.archive("winograd.safetensors")
        func tensor(_ field: String) throws -> Tensor {
            let t = try archive.tensor(named: "\(name).\(field)")
            return Tensor(shape: t.shape, values: t.values)
        }
        let reflect = c.paddingMode == "reflect"
        let conv = Conv2d(name: "c", inputChannels: c.inputChannels, outputChannels: c.outputChannels, kernelSize: 3,
                          padding: 1, paddingMode: reflect ? .reflect : .zeros)
        #expect(conv.usesWinograd, "\(name): automatic must pick Winograd at these channel counts")
        conv.weight.value.assign(from: try tensor("weight"))
        conv.bias!.value.assign(from: try tensor("bias"))
        let record = LayerRecord()
        let output = conv.forward(try tensor("input"), record: record)
        let gradInput = conv.backward(try tensor("grad_output"), record: record)
        let errors = [
            ("output", TorchGoldens.relativeError(output.toArray(), try archive.tensor(named: "\(name).output").values)),
            ("grad_input", TorchGoldens.relativeError(gradInput.toArray(), try archive.tensor(named: "\(name).grad_input").values)),
            ("grad_weight", TorchGoldens.relativeError(conv.weight.gradient.toArray(), try archive.tensor(named: "\(name).grad_weight").values)),
            ("grad_bias", TorchGoldens.relativeError(conv.bias!.gradient.toArray(), try archive.tensor(named: "\(name).grad_bias").values)),
        ]
        for (field, error) in errors {
            #expect(error <= 1e-5, "\(name) \(field): \(error) (PyTorch float32: \(c.torch_f32_error))")
        }
        print("winograd \(name): worst error \(errors.map(\.1).max()!) (PyTorch float32: \(c.torch_f32_error))")
    }

    /// (inputChannels, outputChannels, height, width, padding, mode, batch): odd and even sizes, padding 0–2,
    /// images smaller than a tile row, both padding modes.
    static let shapes: [(Int, Int, Int, Int, Int, PaddingMode, Int)] = [
        (3, 5, 7, 9, 1, .reflect, 2), (8, 8, 4, 4, 1, .reflect, 1), (6, 4, 5, 3, 1, .zeros, 1),
        (4, 7, 9, 8, 0, .zeros, 2), (5, 3, 6, 7, 2, .zeros, 1), (3, 3, 5, 5, 2, .reflect, 1),
        (2, 2, 3, 3, 1, .reflect, 1), (16, 24, 12, 12, 1, .reflect, 1),
    ]

    @Test(arguments: 0..<shapes.count)
    func agreesWithIm2col(_ index: Int) {
        let (cin, cout, h, w, p, mode, batch) = Self.shapes[index]
        var random = SeededRandom(seed: UInt64(100 + index))
        func randomTensor(_ shape: [Int]) -> Tensor {
            let t = Tensor(shape: shape)
            for i in 0..<t.count { t.data[i] = Float(random.nextNormal()) }
            return t
        }
        let x = randomTensor([batch, cin, h, w])
        let weight = randomTensor([cout, cin, 3, 3]), bias = randomTensor([cout])
        let dy = randomTensor([batch, cout, h + 2 * p - 2, w + 2 * p - 2])
        var results: [[[Float]]] = []
        for algorithm in [ConvolutionAlgorithm.im2col, .winograd] {
            let conv = Conv2d(name: "c", inputChannels: cin, outputChannels: cout, kernelSize: 3, padding: p, paddingMode: mode)
            conv.algorithm = algorithm
            #expect(conv.usesWinograd == (algorithm == .winograd))
            conv.weight.value.assign(from: weight)
            conv.bias!.value.assign(from: bias)
            let record = LayerRecord()
            let y = conv.forward(x, record: record)
            let dx = conv.backward(dy, record: record)
            results.append([y.toArray(), dx.toArray(), conv.weight.gradient.toArray(), conv.bias!.gradient.toArray()])
        }
        for (field, i) in [("output", 0), ("grad_input", 1), ("grad_weight", 2), ("grad_bias", 3)] {
            #expect(results[0][i].count == results[1][i].count)
            let error = TorchGoldens.relativeError(results[1][i], results[0][i])
            #expect(error <= 2e-6, "shape \(Self.shapes[index]) \(field): Winograd vs im2col \(error)")
        }
    }

    /// The transformed kernels are cached per workspace; changing any single weight must invalidate them.
    @Test func kernelCacheFollowsWeightChanges() {
        var random = SeededRandom(seed: 11)
        let conv = Conv2d(name: "c", inputChannels: 32, outputChannels: 32, kernelSize: 3, padding: 1, paddingMode: .reflect)
        let reference = Conv2d(name: "r", inputChannels: 32, outputChannels: 32, kernelSize: 3, padding: 1, paddingMode: .reflect)
        reference.algorithm = .im2col
        for i in 0..<conv.weight.value.count { conv.weight.value.data[i] = Float(random.nextNormal()) }
        let x = Tensor(shape: [1, 32, 8, 8])
        for i in 0..<x.count { x.data[i] = Float(random.nextNormal()) }
        let workspace = Workspace(), record = LayerRecord()
        for step in 0..<3 {
            if step > 0 { conv.weight.value.data[(step * 4099) % conv.weight.value.count] += 0.5 }
            let y = conv.forward(x, record: record, mode: .inference, workspace: workspace, consumeInput: false).toArray()
            reference.weight.value.assign(from: conv.weight.value)
            let expected = reference.forward(x, record: LayerRecord(), mode: .inference).toArray()
            #expect(TorchGoldens.relativeError(y, expected) <= 2e-6, "after weight change \(step)")
        }
    }

    /// A whole generator with Winograd residual convolutions gives the im2col generator's output and gradients.
    @Test func generatorAgreesWithIm2col() {
        let configuration = GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: 8, residualBlocks: 2)
        var outputs: [[Float]] = [], gradients: [[Float]] = []
        for algorithm in [ConvolutionAlgorithm.im2col, .winograd] {
            let generator = ResnetGenerator(configuration)
            generator.initializeWeights(seed: 7)
            generator.setConvolutionAlgorithm(algorithm)
            var random = SeededRandom(seed: 3)
            let x = Tensor(shape: [1, 1, 36, 28])
            for i in 0..<x.count { x.data[i] = Float(random.nextNormal()) }
            let record = LayerRecord()
            let y = generator.forward(x, record: record)
            let dy = Tensor(shape: y.shape)
            for i in 0..<dy.count { dy.data[i] = Float(random.nextNormal()) }
            let dx = Tensor(shape: x.shape)
            generator.backward(dy, record: record, gradInput: dx)
            outputs.append(y.toArray() + generator.infer(x).toArray())
            gradients.append(dx.toArray() + generator.parameters.flatMap { $0.gradient.toArray() })
        }
        #expect(TorchGoldens.relativeError(outputs[1], outputs[0]) <= 1e-5)
        #expect(TorchGoldens.relativeError(gradients[1], gradients[0]) <= 1e-4)
    }
}
