import Foundation
import Testing
@testable import NeuralNetwork
import MR2CTSupport
@testable import CycleGAN

/// `CycleGANModel.memoryProfile` (the `memory_mb` of `mr2ct bench`): parts checked against hand-computed sizes.
@Suite struct MemoryProfileTests {
    @Test func storageIsCountedOnceWhateverViewsOrRecordsShareIt() {
        let t = Tensor(shape: [2, 3, 4, 5])          // 120 floats = 480 bytes
        var c = TensorStorageBytes()
        c.add(t)
        c.add(t.reshaped([6, 20]))                   // a view of the same storage
        c.add(t)
        #expect(c.bytes == 480)
        c.add(Tensor(shape: [7]))                    // 28 bytes more
        #expect(c.bytes == 508)
        let p = Parameter(name: "w", shape: [3, 3])  // value + gradient: 2 × 36 bytes
        c.add([p])
        #expect(c.bytes == 580)
    }

    @Test func partsOfATrainingStepMatchTheirShapes() {
        let configuration = CycleGANConfiguration(generator: .init(ngf: 4, residualBlocks: 1),
                                                  discriminator: .init(ndf: 4), poolSize: 2)
        let model = CycleGANModel(configuration: configuration, seed: 1)
        let side = 32
        func image(_ seed: UInt64) -> Tensor {
            var r = SeededRandom(seed: seed)
            return Tensor(shape: [1, 1, side, side], values: (0..<(side * side)).map { _ in r.nextUnitFloat() * 2 - 1 })
        }
        _ = model.trainStep(realA: image(1), realB: image(2))
        let parts = model.memoryProfile
        #expect(Set(parts.keys) == Set(CycleGANMemoryPart.allCases))
        let scalars = [model.gA.parameterCount, model.gB.parameterCount, model.dA.parameterCount, model.dB.parameterCount].reduce(0, +)
        #expect(parts[.parametersAndGradients] == 8 * scalars)   // value + gradient, float32
        #expect(parts[.adamMoments] == 8 * scalars)               // first + second moment
        #expect(parts[.imagePools] == 2 * side * side * 4)        // one image in each pool after one step
        // Four generator records (fake and reconstruction per direction; the identity terms run in the
        // reconstructions' records first), none sharing storage: each is what one training forward keeps.
        let record = LayerRecord()
        _ = model.gA.forward(image(3), record: record)
        var one = TensorStorageBytes()
        one.add(record)
        #expect(parts[.generatorRecords] == 4 * one.bytes)
        // By hand, ngf 4, one block, 32²: every convolution's output, normalised in place (x̂); 1/σ per plane of
        // each InstanceNorm; the ReLU output of down-sampling 2, which the residual block reads; the block's sum;
        // the last convolution's output (tanh in place). The ReLU outputs that a convolution reads next (after the
        // head, down-sampling 1, the block's first norm and both up-samplings) live in the workspace's shared
        // activation buffer and are rebuilt from x̂ in backward.
        let convolutionOutputs = 4 * 32 * 32 + 8 * 16 * 16 + 16 * 8 * 8 + 2 * 16 * 8 * 8 + 8 * 16 * 16 + 4 * 32 * 32
            + 1 * 32 * 32
        let inverseDeviations = 4 + 8 + 16 + 16 + 16 + 8 + 4
        let kept = 16 * 8 * 8 + 16 * 8 * 8
        #expect(one.bytes == 4 * (convolutionOutputs + inverseDeviations + kept))
        let shared = 4 * 32 * 32 * 4      // the largest of them: the head's 4 × 32 × 32
        #expect(model.gA.workspace.sharedActivationBytes == shared)
        #expect((parts[.workspaces] ?? 0) > 0 && (parts[.discriminatorRecords] ?? 0) > 0)
    }

    @Test func releasingTheStepBuffersFreesThemAndTheNextStepComputesTheSameBits() {
        let configuration = CycleGANConfiguration(generator: .init(ngf: 4, residualBlocks: 1),
                                                  discriminator: .init(ndf: 4), poolSize: 2)
        let kept = CycleGANModel(configuration: configuration, seed: 5), released = CycleGANModel(configuration: configuration, seed: 5)
        func image(_ seed: UInt64) -> Tensor {
            var r = SeededRandom(seed: seed)
            return Tensor(shape: [1, 1, 32, 32], values: (0..<(32 * 32)).map { _ in r.nextUnitFloat() * 2 - 1 })
        }
        for model in [kept, released] { _ = model.trainStep(realA: image(1), realB: image(2)) }
        released.releaseStepBuffers()
        let parts = released.memoryProfile
        #expect(parts[.generatorRecords] == 0 && parts[.discriminatorRecords] == 0)
        // What stays of the workspaces is oneDNN's primitives (their creation compiles code).
        #expect((parts[.workspaces] ?? 0) < (kept.memoryProfile[.workspaces] ?? 0))
        for network in released.networks {
            #expect(network.workspace.sharedActivationBytes == 0 && network.workspace.kernels.byteCount == 0)
        }
        let a = kept.trainStep(realA: image(3), realB: image(4)), b = released.trainStep(realA: image(3), realB: image(4))
        #expect(a == b)
        for (p, q) in zip(kept.gA.parameters + kept.dB.parameters, released.gA.parameters + released.dB.parameters) {
            #expect(p.value.toArray() == q.value.toArray(), "\(p.name)")
        }
        #expect(released.memoryProfile[.generatorRecords] == kept.memoryProfile[.generatorRecords])
    }
}
