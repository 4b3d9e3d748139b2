import Foundation
import Testing
import NeuralNetwork
import MR2CTSupport
@testable import CycleGAN

@Suite struct CycleGANStepTests {
    let configuration = CycleGANConfiguration(generator: .init(ngf: 4, residualBlocks: 1), discriminator: .init(ndf: 4), poolSize: 2)

    func image(_ seed: UInt64) -> Tensor {
        var r = SeededRandom(seed: seed)
        return Tensor(shape: [1, 1, 32, 32], values: (0..<1024).map { _ in r.nextUnitFloat() * 2 - 1 })
    }

    @Test func stepIsDeterministicAndUpdatesAllFourNetworks() {
        let a = CycleGANModel(configuration: configuration, seed: 9), b = CycleGANModel(configuration: configuration, seed: 9)
        let before = a.gA.parameters[0].value.toArray(), beforeD = a.dB.parameters[0].value.toArray()
        var la: [CycleGANLosses] = [], lb: [CycleGANLosses] = []
        for i in 0..<4 {
            la.append(a.trainStep(realA: image(UInt64(2 * i)), realB: image(UInt64(2 * i + 1))))
            lb.append(b.trainStep(realA: image(UInt64(2 * i)), realB: image(UInt64(2 * i + 1))))
        }
        #expect(la == lb)
        #expect(a.gA.parameters[0].value.toArray() == b.gA.parameters[0].value.toArray())
        #expect(a.gA.parameters[0].value.toArray() != before)
        #expect(a.dB.parameters[0].value.toArray() != beforeD)
        #expect(a.optimizerG.stepCount == 4 && a.optimizerD.stepCount == 4)
        for l in la {
            for v in [l.dA, l.gA, l.cycleA, l.idtA, l.dB, l.gB, l.cycleB, l.idtB] { #expect(v.isFinite && v > 0) }
        }
        #expect(a.poolA.images.count == 2 && a.poolB.images.count == 2)
        #expect(Set(a.lastVisuals.keys).isSuperset(of: [.realA, .fakeB, .recA, .realB, .fakeA, .recB]))
    }

    /// With λ_structure > 0 the step reports λ · mean |MIND(fake) − MIND(real)| for both directions (recomputed
    /// here from the step's own images) and its gradient changes the generators' update; with 0 it reports 0.
    @Test func structureTermEntersTheGeneratorObjective() {
        var structured = configuration
        structured.lambdaStructure = 4
        let with = CycleGANModel(configuration: structured, seed: 3), without = CycleGANModel(configuration: configuration, seed: 3)
        let a = image(10), b = image(11)
        let losses = with.trainStep(realA: a, realB: b), plain = without.trainStep(realA: a, realB: b)
        #expect(plain.structureA == 0 && plain.structureB == 0)
        let visuals = with.lastVisuals, mind = StructureLoss()
        for (fake, real, reported) in [(CycleGANImageKey.fakeB, CycleGANImageKey.realA, losses.structureA), (.fakeA, .realB, losses.structureB)] {
            let target = Tensor(shape: mind.descriptorShape(for: visuals[real]!.shape))
            mind.descriptor(of: visuals[real]!, into: target)
            let expected = mind.loss(visuals[fake]!, target: target, scale: 4)
            #expect(expected > 0.05 && abs(reported - expected) <= 1e-5 * expected, "\(fake): \(reported) vs \(expected)")
        }
        // The networks and fakes were the same before the update (same seed), so only the structure gradient
        // can make the generators' updates differ; the discriminators see the same fakes and are updated alike.
        #expect(losses.cycleA == plain.cycleA && losses.gA == plain.gA)
        #expect(with.gA.parameters[0].value.toArray() != without.gA.parameters[0].value.toArray())
        #expect(with.gB.parameters[0].value.toArray() != without.gB.parameters[0].value.toArray())
        #expect(with.dA.parameters[0].value.toArray() == without.dA.parameters[0].value.toArray())
    }

    /// Run folders written before the structure term existed resume with it off.
    @Test func configurationsWithoutStructureWeightDecodeAsOff() throws {
        var encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration)) as! [String: Any]
        #expect(encoded.removeValue(forKey: "lambdaStructure") != nil)
        let decoded = try JSONDecoder().decode(CycleGANConfiguration.self, from: JSONSerialization.data(withJSONObject: encoded))
        #expect(decoded == configuration && decoded.lambdaStructure == 0)
    }

    @Test func learningRateSetsBothOptimisers() {
        let m = CycleGANModel(configuration: configuration, seed: 1)
        #expect(m.learningRate == 2e-4)
        m.learningRate = 1e-4
        #expect(m.optimizerG.learningRate == 1e-4 && m.optimizerD.learningRate == 1e-4)
    }

    @Test func poolReturnsOlderImagesOnlyWhenFull() {
        var pool = ImagePool(capacity: 2, seed: 3)
        let images = (0..<40).map { image(UInt64(100 + $0)) }
        #expect(pool.query(images[0]) === images[0])
        #expect(pool.query(images[1]) === images[1])
        var older = 0
        for i in 2..<40 where pool.query(images[i]) !== images[i] { older += 1 }
        #expect(older > 5 && older < 33)   // p = 1/2 over 38 draws
    }
}
