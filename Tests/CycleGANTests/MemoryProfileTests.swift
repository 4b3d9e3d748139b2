import Foundation
import Testing
import NeuralNetwork
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
        // Six generator applications (fake, reconstruction, identity per direction), none sharing storage: each is
        // what one training forward of the same generator keeps.
        let record = LayerRecord()
        _ = model.gA.forward(image(3), record: record)
        var one = TensorStorageBytes()
        one.add(record)
        #expect(one.bytes > 0 && parts[.generatorRecords] == 6 * one.bytes)
        #expect((parts[.workspaces] ?? 0) > 0 && (parts[.discriminatorRecords] ?? 0) > 0)
    }
}
