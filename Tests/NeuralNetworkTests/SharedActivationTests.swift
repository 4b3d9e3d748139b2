import Foundation
import Testing
import MR2CTSupport
@testable import NeuralNetwork

/// `Sequential`'s shared activation buffer (`OutputRecomputingLayer`): an InstanceNorm's activated output that the
/// next convolution reads lives in one workspace buffer, is overwritten by later passes, and is rebuilt from x̂
/// before the convolution's backward pass reads it again.
@Suite struct SharedActivationTests {
    /// conv 3×3 → InstanceNorm + activation (x̂ in place of the conv's output) → conv 3×3 (reads the activation).
    static func network(seed: UInt64, activation: FusedActivation, affine: Bool) -> SequentialNetwork {
        let network = SequentialNetwork(network: Sequential([
            Conv2d(name: "0", inputChannels: 2, outputChannels: 5, kernelSize: 3, padding: 1, paddingMode: .reflect),
            InstanceNorm2d(name: "1", channels: 5, affine: affine, activation: activation),
            Conv2d(name: "2", inputChannels: 5, outputChannels: 3, kernelSize: 3, padding: 1),
        ], consumes: [false, true, false]))
        network.initializeWeights(seed: seed)
        // Affine maps away from (1, 0), so that act(γ·x̂ + β) is not x̂'s activation alone.
        for p in network.parameters where p.name.hasPrefix("1.") {
            for i in 0..<p.value.count { p.value.data[i] += p.name.hasSuffix("weight") ? 0.3 * Float(i) : -0.2 }
        }
        return network
    }

    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var r = SeededRandom(seed: seed)
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, values: (0..<count).map { _ in r.nextUnitFloat() * 2 - 1 })
    }

    @Test(arguments: [(FusedActivation.relu, false), (.leakyReLU(slope: 0.2), false), (.relu, true)])
    func aRebuiltActivationGivesTheGradientsOfAnUndisturbedPass(_ activation: FusedActivation, _ affine: Bool) {
        let x = Self.random([1, 2, 9, 11], seed: 1), other = Self.random([1, 2, 9, 11], seed: 2)
        let dy = Self.random([1, 3, 9, 11], seed: 3)
        // Reference: backward right after forward, nothing else in between.
        let a = Self.network(seed: 7, activation: activation, affine: affine)
        let recordA = LayerRecord()
        _ = a.forward(x, record: recordA)
        let dxA = Tensor(shape: x.shape)
        a.backward(dy, record: recordA, gradInput: dxA)
        // The same weights; a second application in between overwrites the shared buffer with its own activation.
        let b = Self.network(seed: 7, activation: activation, affine: affine)
        let recordB = LayerRecord(), recordOther = LayerRecord()
        _ = b.forward(x, record: recordB)
        #expect(recordB.children[1].outputIsShared)
        let kept = recordB.children[1].output!.toArray()
        _ = b.forward(other, record: recordOther)
        #expect(recordB.children[1].output!.toArray() != kept)   // the buffer now holds the other pass's values
        let dxB = Tensor(shape: x.shape)
        b.backward(dy, record: recordB, gradInput: dxB)
        #expect(recordB.children[1].output!.toArray() == kept)   // rebuilt bit for bit
        #expect(dxB.toArray() == dxA.toArray())
        for (p, q) in zip(a.parameters, b.parameters) { #expect(p.gradient.toArray() == q.gradient.toArray(), "\(p.name)") }
        // One buffer, the size of the activation (5 × 9 × 11 floats), held by the workspace, not by the records.
        #expect(b.workspace.sharedActivationBytes == 5 * 9 * 11 * 4)
        var bytes = TensorStorageBytes()
        bytes.add(recordB)
        #expect(bytes.bytes == 4 * (5 * 9 * 11 + 5 + 3 * 9 * 11))   // x̂ (in the conv's output), 1/σ, the last output
    }

    @Test func aConvolutionsOutputNormalisedWithoutActivationOrAffineIsNotShared() {
        // x̂ is then the output itself: nothing to rebuild, nothing to share.
        let norm = InstanceNorm2d(name: "n", channels: 4)
        #expect(!norm.canRecomputeOutput)
        let network = SequentialNetwork(network: Sequential([
            Conv2d(name: "0", inputChannels: 1, outputChannels: 4, kernelSize: 3, padding: 1), norm,
            Conv2d(name: "2", inputChannels: 4, outputChannels: 1, kernelSize: 3, padding: 1),
        ], consumes: [false, true, false]))
        network.initializeWeights(seed: 3)
        let record = LayerRecord()
        _ = network.forward(Self.random([1, 1, 6, 6], seed: 4), record: record)
        #expect(!record.children[1].outputIsShared)
        #expect(network.workspace.sharedActivationBytes == 0)
    }

    @Test func inferenceRecordsDoNotUseTheSharedBuffer() {
        let network = Self.network(seed: 5, activation: .relu, affine: false)
        _ = network.infer(Self.random([1, 2, 8, 8], seed: 6))
        #expect(network.workspace.sharedActivationBytes == 0)
    }
}
