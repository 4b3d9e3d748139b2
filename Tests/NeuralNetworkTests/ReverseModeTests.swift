import Testing
import Foundation
import MR2CTSupport
@testable import NeuralNetwork
import TestSupport
import Networks

/// Reverse mode for GANs: several applications of one network, frozen networks, parameter names.
@Suite struct ReverseModeTests {
    func randomize(_ net: ParameterContainer, seed: UInt64) {
        var r = SeededRandom(seed: seed)
        for p in net.parameters { for i in 0..<p.value.count { p.value.data[i] = Float(r.nextNormal()) * 0.2 } }
    }

    func image(_ seed: UInt64, _ shape: [Int] = [1, 1, 16, 16]) -> Tensor {
        var r = SeededRandom(seed: seed)
        return Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float(r.nextNormal()) })
    }

    @Test func applicationsKeepTheirOwnRecordsAndGradientsAccumulate() {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 4, residualBlocks: 1))
        randomize(g, seed: 1)
        let x1 = image(2), x2 = image(3), r1 = image(4), r2 = image(5)
        // Separately: gradient of application 1, then of application 2.
        func gradients(_ x: Tensor, _ r: Tensor) -> [[Float]] {
            g.zeroGradients()
            let rec = LayerRecord()
            _ = g.forward(x, record: rec)
            g.backward(r, record: rec)
            return g.parameters.map { $0.gradient.toArray() }
        }
        let a = gradients(x1, r1), b = gradients(x2, r2)
        // Interleaved: both forwards first (two records), then both backwards in reverse order.
        g.zeroGradients()
        let rec1 = LayerRecord(), rec2 = LayerRecord()
        let y1 = g.forward(x1, record: rec1).copy()
        _ = g.forward(x2, record: rec2)
        g.backward(r2, record: rec2)
        g.backward(r1, record: rec1)
        #expect(rec1.output!.toArray() == y1.toArray(), "the second application must not overwrite the first's record")
        for (i, p) in g.parameters.enumerated() {
            for j in 0..<p.gradient.count {
                let expected = a[i][j] + b[i][j]
                #expect(abs(p.gradient.data[j] - expected) <= 1e-4 * max(1, abs(expected)), "\(p.name)[\(j)]")
            }
        }
    }

    @Test func frozenNetworkPassesGradientsWithoutTouchingParameters() {
        let d = NLayerDiscriminator(DiscriminatorConfiguration(ndf: 4))
        randomize(d, seed: 7)
        d.zeroGradients()
        let x = image(8, [1, 1, 32, 32])
        let rec = LayerRecord()
        let y = d.forward(x, record: rec)
        let dx = Tensor(shape: x.shape)
        d.backward(image(9, y.shape), record: rec, gradInput: dx, parameterGradients: false)
        #expect(d.parameters.allSatisfy { $0.gradient.toArray().allSatisfy { $0 == 0 } })
        #expect(dx.toArray().contains { $0 != 0 })
        // The same input gradient as an unfrozen pass.
        let dx2 = Tensor(shape: x.shape)
        d.backward(image(9, y.shape), record: rec, gradInput: dx2, parameterGradients: true)
        #expect(dx.toArray() == dx2.toArray())
        #expect(d.parameters.contains { $0.gradient.toArray().contains { $0 != 0 } })
    }

    @Test func inferenceEqualsTrainingForwardWithoutDropout() {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 4, residualBlocks: 2))
        randomize(g, seed: 11)
        let x = image(12, [2, 1, 16, 16])
        let y = g.forward(x, record: LayerRecord()).toArray()
        #expect(g.infer(x).toArray() == y)
    }

    @Test func concurrentInferenceCallsAgreeWithSerialOnes() {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 8, residualBlocks: 2))
        randomize(g, seed: 13)
        let inputs = (0..<6).map { image(UInt64(20 + $0), [2, 1, 32, 32]) }
        let expected = inputs.map { g.infer($0).toArray() }
        let results = ResultsBox(count: inputs.count)
        DispatchQueue.concurrentPerform(iterations: inputs.count) { i in results.set(i, g.infer(inputs[i]).toArray()) }
        // Concurrent calls are safe, but not bit-identical to serial ones: while one call forks its kernels
        // (`ComputeThreads.serial`) the others run theirs single-threaded, and reductions split by thread count
        // round differently (seen in CI under load: the exact comparison failed though every call was correct).
        for i in inputs.indices {
            let got = results.get(i)
            #expect(got.count == expected[i].count)
            #expect(TorchGoldens.maximumAbsoluteDifference(got, expected[i]) <= 1e-5)
        }
    }

    @Test func stateDictNamesMatchPyTorch() {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 64, residualBlocks: 9))
        let names = g.parameters.map(\.name)
        #expect(names.count == 4 * 2 + 9 * 4 + 2 * 2)
        #expect(names.prefix(6) == ["model.1.weight", "model.1.bias", "model.4.weight", "model.4.bias", "model.7.weight", "model.7.bias"])
        #expect(names.contains("model.10.conv_block.1.weight") && names.contains("model.18.conv_block.5.bias"))
        #expect(names.suffix(6) == ["model.19.weight", "model.19.bias", "model.22.weight", "model.22.bias", "model.26.weight", "model.26.bias"])
        #expect(g.parameterCount == 11_365_633)   // PyTorch: sum(p.numel()) of resnet_9blocks, 1 → 1 channel
        let dropout = ResnetGenerator(GeneratorConfiguration(ngf: 8, residualBlocks: 1, dropout: true))
        #expect(dropout.parameters.map(\.name).contains("model.10.conv_block.6.weight"))
        let d = NLayerDiscriminator(DiscriminatorConfiguration())
        #expect(d.parameters.map(\.name) == ["model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias",
                                              "model.5.weight", "model.5.bias", "model.8.weight", "model.8.bias",
                                              "model.11.weight", "model.11.bias"])
        #expect(d.parameterCount == 2_762_689)    // PyTorch: NLayerDiscriminator(1, 64, 3)
        #expect(d.parameters[8].value.shape == [1, 512, 4, 4])
    }

    @Test func adamMatchesHandComputedSteps() {
        // One scalar, g = 0.5 then -1: PyTorch Adam(lr 0.1, betas (0.9, 0.999), eps 1e-8).
        let p = Parameter(name: "w", shape: [1])
        p.value.data[0] = 1
        let adam = Adam(parameters: [p], learningRate: 0.1)
        p.gradient.data[0] = 0.5
        adam.step()
        // m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25 → step 0.1 · 0.5 / (0.5 + 1e-8)
        #expect(abs(p.value.data[0] - 0.9) < 1e-6)
        p.gradient.data[0] = -1
        adam.step()
        let m = 0.9 * 0.05 + 0.1 * -1.0, v = 0.999 * 0.00025 + 0.001 * 1.0
        let expected = 0.9 - 0.1 / (1 - 0.81) * m / (v.squareRoot() / (1 - 0.998001).squareRoot() + 1e-8)
        #expect(abs(Double(p.value.data[0]) - expected) < 1e-6)
        #expect(adam.stepCount == 2)
        #expect(abs(adam.moments[0].first.data[0] - Float(m)) < 1e-7)
    }
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [[Float]]
    init(count: Int) { values = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [Float]) { lock.lock(); values[i] = v; lock.unlock() }
    func get(_ i: Int) -> [Float] { lock.lock(); defer { lock.unlock() }; return values[i] }
}
