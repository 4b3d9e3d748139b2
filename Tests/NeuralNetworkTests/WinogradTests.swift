import Foundation
import Testing
import MR2CTSupport
import Safetensors
import TestSupport
@testable import NeuralNetwork
import Networks

/// The Winograd F(2×2, 3×3) and F(4×4, 3×3) paths of `Conv2d` (forward and backward-data; backward-weights by
/// F(2×2), and on im2col under F(4×4) and `.native`): against PyTorch float64 references at residual-block channel counts (winograd.safetensors,
/// make_winograd_goldens.py) and against the im2col path on shapes the goldens do not cover.
@Suite struct WinogradTests {
    struct Case: Decodable {
        var name: String, inputChannels: Int, outputChannels: Int, height: Int, width: Int, paddingMode: String
        var torch_f32_error: Double
    }

    static let cases = TorchGoldens.cases(in: "winograd.safetensors", as: [Case].self)

    @Test func fixturesArePresent() { #expect(Self.cases.count == 3) }

    /// Each golden case under `.automatic` (F(2×2, 3×3) at these sizes, all below `winogradF4MinimumSide`) and
    /// forced to F(4×4, 3×3).
    @Test(arguments: cases.map(\.name), [ConvolutionAlgorithm.automatic, .winograd4])
    func matchesPyTorch(_ name: String, _ algorithm: ConvolutionAlgorithm) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let archive = try TorchGoldens.archive("winograd.safetensors")
        func tensor(_ field: String) throws -> Tensor {
            let t = try archive.tensor(named: "\(name).\(field)")
            return Tensor(shape: t.shape, values: t.values)
        }
        let reflect = c.paddingMode == "reflect"
        let conv = Conv2d(name: "c", inputChannels: c.inputChannels, outputChannels: c.outputChannels, kernelSize: 3,
                          padding: 1, paddingMode: reflect ? .reflect : .zeros)
        conv.algorithm = algorithm
        #expect(conv.winogradTile(height: c.height, width: c.width, mode: .inference) == (algorithm == .automatic ? .two : .four),
                 "\(name): automatic must pick F(2×2) at these channel counts and sizes")
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
            #expect(error <= 1e-5, "\(name) \(algorithm) \(field): \(error) (PyTorch float32: \(c.torch_f32_error))")
        }
        print("winograd \(name) \(algorithm): worst error \(errors.map(\.1).max()!) (PyTorch float32: \(c.torch_f32_error))")
    }

    /// (inputChannels, outputChannels, height, width, padding, mode, batch): odd and even sizes, padding 0–2,
    /// images smaller than a tile row, both padding modes; and rows of tiles that the transforms' 8-lane vectors
    /// cover whole and with a remainder (70 wide: 35 F(2×2) tiles, 18 F(4×4) tiles; 64 wide: 32 and 16).
    static let shapes: [(Int, Int, Int, Int, Int, PaddingMode, Int)] = [
        (3, 5, 7, 9, 1, .reflect, 2), (8, 8, 4, 4, 1, .reflect, 1), (6, 4, 5, 3, 1, .zeros, 1),
        (4, 7, 9, 8, 0, .zeros, 2), (5, 3, 6, 7, 2, .zeros, 1), (3, 3, 5, 5, 2, .reflect, 1),
        (2, 2, 3, 3, 1, .reflect, 1), (16, 24, 12, 12, 1, .reflect, 1),
        (5, 6, 13, 70, 1, .reflect, 1), (3, 4, 10, 64, 1, .zeros, 2),
    ]

    /// F(2×2) within 2e-6 of im2col, F(4×4) (transform coefficients up to 8 and 1/24) within 1e-5.
    @Test(arguments: 0..<shapes.count, [ConvolutionAlgorithm.winograd, .winograd4])
    func agreesWithIm2col(_ index: Int, _ winograd: ConvolutionAlgorithm) {
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
        for algorithm in [ConvolutionAlgorithm.im2col, winograd] {
            let conv = Conv2d(name: "c", inputChannels: cin, outputChannels: cout, kernelSize: 3, padding: p, paddingMode: mode)
            conv.algorithm = algorithm
            #expect(conv.winogradTile(height: h, width: w, mode: .training) == (algorithm == .im2col ? nil : winograd == .winograd ? .two : .four))
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
            #expect(error <= (winograd == .winograd ? 2e-6 : 1e-5), "shape \(Self.shapes[index]) \(field): \(winograd) vs im2col \(error)")
        }
    }

    /// The transformed kernels are cached per workspace; changing any single weight must invalidate them.
    @Test(arguments: [ConvolutionAlgorithm.winograd, .winograd4])
    func kernelCacheFollowsWeightChanges(_ algorithm: ConvolutionAlgorithm) {
        var random = SeededRandom(seed: 11)
        let conv = Conv2d(name: "c", inputChannels: 32, outputChannels: 32, kernelSize: 3, padding: 1, paddingMode: .reflect)
        conv.algorithm = algorithm
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
            #expect(TorchGoldens.relativeError(y, expected) <= (algorithm == .winograd ? 2e-6 : 1e-5),
                    "\(algorithm) after weight change \(step)")
        }
    }

    /// A whole generator with Winograd residual convolutions gives the im2col generator's output and gradients.
    @Test func generatorAgreesWithIm2col() {
        let configuration = GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: 8, residualBlocks: 2)
        var outputs: [[Float]] = [], gradients: [[Float]] = []
        for algorithm in [ConvolutionAlgorithm.im2col, .winograd, .winograd4] {
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
        for i in 1...2 {
            #expect(TorchGoldens.relativeError(outputs[i], outputs[0]) <= 1e-5, "algorithm \(i)")
            #expect(TorchGoldens.relativeError(gradients[i], gradients[0]) <= 1e-4, "algorithm \(i)")
        }
    }

    /// `.automatic` and `.native` infer with F(4×4, 3×3) from `winogradF4MinimumSide` on (the 256² generators' 64²
    /// residual blocks) and with F(2×2, 3×3) below it (the bundled 96² models' 24² blocks); training passes always
    /// take F(2×2); im2col below 32 channels and for strided convolutions; the forced algorithms ignore the mode.
    @Test func automaticChoosesTheTileBySizeAndMode() {
        let conv = Conv2d(name: "c", inputChannels: 256, outputChannels: 256, kernelSize: 3, padding: 1, paddingMode: .reflect)
        let side = Conv2d.winogradF4MinimumSide
        for algorithm in [ConvolutionAlgorithm.automatic, .native] {
            conv.algorithm = algorithm
            #expect(conv.winogradTile(height: 64, width: 64, mode: .inference) == .four)
            #expect(conv.winogradTile(height: side, width: 2 * side, mode: .inference) == .four)
            #expect(conv.winogradTile(height: side - 1, width: 64, mode: .inference) == .two)
            #expect(conv.winogradTile(height: 24, width: 24, mode: .inference) == .two)
            #expect(conv.winogradTile(height: 64, width: 64, mode: .training) == .two)
        }
        for (algorithm, tile) in [(ConvolutionAlgorithm.winograd, WinogradTile.two), (.winograd4, .four)] {
            conv.algorithm = algorithm
            for mode in [ForwardMode.training, .inference] {
                #expect(conv.winogradTile(height: 8, width: 8, mode: mode) == tile)
            }
        }
        let narrow = Conv2d(name: "n", inputChannels: 16, outputChannels: 64, kernelSize: 3, padding: 1)
        #expect(narrow.winogradTile(height: 64, width: 64, mode: .inference) == nil)
        let strided = Conv2d(name: "s", inputChannels: 256, outputChannels: 256, kernelSize: 3, stride: 2, padding: 1)
        #expect(strided.winogradTile(height: 64, width: 64, mode: .inference) == nil)
    }

    /// Two 1 × 1 × side² normal images (at the default 128² a generator of ngf 8 runs its residual blocks at 32²:
    /// F(4×4)).
    static func images(seed: UInt64, side: Int = 128) -> [Tensor] {
        var random = SeededRandom(seed: seed)
        return (0..<2).map { _ in
            let x = Tensor(shape: [1, 1, side, side])
            for i in 0..<x.count { x.data[i] = Float(random.nextNormal()) }
            return x
        }
    }

    /// `g.infer` on the two inputs at once on two threads, repeated until two calls overlapped (two inference
    /// contexts in the pool): the outputs and the pool's memory then.
    static func inferConcurrently(_ g: ResnetGenerator, _ inputs: [Tensor]) throws -> (outputs: [[Float]], memory: InferenceMemory) {
        let threads = ComputeThreads.count
        defer { ComputeThreads.set(threads) }
        ComputeThreads.set(2)
        var outputs: [[Float]] = []
        for _ in 0..<50 where g.inferenceMemory.contexts < 2 {
            outputs = ComputeThreads.map(2) { g.infer(inputs[$0]).toArray() }
        }
        let memory = g.inferenceMemory
        try #require(memory.contexts == 2, "two calls never overlapped in 50 rounds")
        return (outputs, memory)
    }

    /// Concurrent inference calls (conversion's two chains) share one copy of the transformed kernels: with two
    /// contexts in the pool the kernel bytes are still one F(4×4) set per residual convolution (36 × Cout × Cin
    /// floats each), and the outputs agree with the training-mode forward pass (F(2×2)) to F(4×4)'s rounding.
    @Test func inferenceContextsShareTheKernels() throws {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 8, residualBlocks: 2))   // 32-channel blocks
        g.initializeWeights(seed: 21)
        let inputs = Self.images(seed: 22)
        let (outputs, memory) = try Self.inferConcurrently(g, inputs)
        #expect(memory.kernelBytes == 2 * 2 * 36 * 32 * 32 * 4)
        for i in 0..<2 {
            let expected = g.forward(inputs[i], record: LayerRecord()).toArray()
            #expect(TorchGoldens.relativeError(outputs[i], expected) <= 1e-5, "input \(i)")
        }
        g.releaseInferenceBuffers()
        #expect(g.inferenceMemory == InferenceMemory())
    }

    /// `.perCall`: each call transforms each residual convolution's kernels into one buffer of its own, so two
    /// concurrent calls hold one F(4×4) layer's kernels each (36 × 32 × 32 floats) instead of the shared set of all
    /// four, and the outputs are the same bits as with the shared kernels; bf16 (whose Winograd kernels are made
    /// from the rounded weights, kept beside them) likewise. 256² images, so that the residual blocks (64²) run on
    /// F(4×4) in bf16 too where the CPU has native bf16: below `Conv2d.bfloat16WinogradMinimumSide` they run on
    /// oneDNN's bf16 kernels and hold no Winograd kernels at all.
    @Test(arguments: [Precision.f32, .bf16])
    func perCallKernelsHoldOneLayerAndGiveTheSameBits(precision: Precision) throws {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 8, residualBlocks: 2))   // 32-channel blocks
        g.initializeWeights(seed: 23)
        g.setPrecision(precision)
        let inputs = Self.images(seed: 24, side: 4 * Conv2d.bfloat16WinogradMinimumSide)
        let (shared, sharedMemory) = try Self.inferConcurrently(g, inputs)
        #expect(sharedMemory.kernelBytes > 0)
        g.inferenceKernelStorage = .perCall
        #expect(g.inferenceMemory == InferenceMemory())
        let (outputs, memory) = try Self.inferConcurrently(g, inputs)
        #expect(memory.kernelBytes == 0)
        #expect(outputs == shared)
        // Each context's workspace holds one layer's F(4×4) kernels (and with bf16 one buffer of rounded weights,
        // as large as the largest layer's), not the four residual convolutions' 4 × 36 × 32 × 32 floats.
        let oneLayer = 36 * 32 * 32 * 4
        g.inferenceKernelStorage = .shared
        _ = g.infer(inputs[0])
        let sharedWorkspace = g.inferenceMemory.workspaceBytes
        g.inferenceKernelStorage = .perCall
        _ = g.infer(inputs[0])
        let perCallWorkspace = g.inferenceMemory.workspaceBytes
        #expect(perCallWorkspace - sharedWorkspace >= oneLayer)
        #expect(perCallWorkspace - sharedWorkspace < 2 * oneLayer)
    }
}

/// The vectorised F(4×4) kernel transform (sixteen kernels per SIMD16 lane group) against the kernel-by-kernel one.
@Suite struct WinogradKernelTransformTests {
    @Test(arguments: [false, true])
    func sixteenKernelsAtOnceGiveTheKernelByKernelBits(adjoint: Bool) {
        let (o, i) = (48, 32)
        var random = SeededRandom(seed: 41)
        let w = (0..<(o * i * 9)).map { _ in Float(random.nextNormal()) * 0.1 }
        var vectorised = [Float](repeating: .nan, count: 36 * o * i), single = vectorised
        w.withUnsafeBufferPointer { w in
            Winograd3x3.transformKernels(w.baseAddress!, outputChannels: o, inputChannels: i, adjoint: adjoint,
                                         tile: .four, into: &vectorised)
            Winograd3x3.transformKernels(w.baseAddress!, outputChannels: o, inputChannels: i, adjoint: adjoint,
                                         tile: .four, into: &single, kernelByKernel: true)
        }
        #expect(vectorised == single)
        #expect(!vectorised.contains { $0.isNaN })
        // One value by hand: U = G g Gᵀ at (row 0, column 0) is g[0][0] / 16 for kernel (0, 0) (rotated: g[2][2]).
        let expected = (adjoint ? w[8] : w[0]) / 16
        #expect(abs(vectorised[0] - expected) <= 1e-7 * max(1, abs(expected)))
    }
}
