import Foundation
import Testing
import NeuralNetwork
import MR2CTSupport
@testable import CycleGAN

/// `BackwardCycle.backTranslation`: the B → A → B term trains G_A on (G_B(B), B) with G_B(B) a fixed input.
@Suite struct BackTranslationTests {
    static func configuration(_ backward: BackwardCycle?, lambdaB: Float = 10) -> CycleGANConfiguration {
        var c = CycleGANConfiguration(generator: .init(ngf: 4, residualBlocks: 1), discriminator: .init(ndf: 4),
                                      lambdaB: lambdaB, poolSize: 2)
        c.backwardCycle = backward
        return c
    }

    static func image(_ seed: UInt64) -> Tensor {
        var r = SeededRandom(seed: seed)
        return Tensor(shape: [1, 1, 32, 32], values: (0..<1024).map { _ in r.nextUnitFloat() * 2 - 1 })
    }

    static func weights(_ networkParameters: [Parameter]) -> [[Float]] { networkParameters.map { $0.value.toArray() } }

    /// One step from the same weights: G_A's update is the reference step's (its gradient from rec_B = G_A(fake_A)
    /// is the same; only where that gradient goes after G_A's input differs), G_B's update is that of the reference
    /// step without the B → A → B term (λ_B = 0), and the discriminators' updates are the reference's (same fakes).
    @Test func theBackwardCycleTrainsGAOnlyAndGBAsIfTheTermWereAbsent() {
        let a = Self.image(1), b = Self.image(2)
        let reference = CycleGANModel(configuration: Self.configuration(nil), seed: 4)
        let backTranslated = CycleGANModel(configuration: Self.configuration(.backTranslation), seed: 4)
        let withoutTerm = CycleGANModel(configuration: Self.configuration(nil, lambdaB: 0), seed: 4)
        let lr = reference.trainStep(realA: a, realB: b), lbt = backTranslated.trainStep(realA: a, realB: b)
        _ = withoutTerm.trainStep(realA: a, realB: b)
        #expect(lr == lbt)
        #expect(lbt.cycleB > 0.01)
        #expect(Self.weights(backTranslated.gA.parameters) == Self.weights(reference.gA.parameters))
        #expect(Self.weights(backTranslated.gB.parameters) == Self.weights(withoutTerm.gB.parameters))
        #expect(Self.weights(backTranslated.gB.parameters) != Self.weights(reference.gB.parameters))
        #expect(Self.weights(backTranslated.gA.parameters) != Self.weights(withoutTerm.gA.parameters))
        #expect(Self.weights(backTranslated.dA.parameters + backTranslated.dB.parameters)
                == Self.weights(reference.dA.parameters + reference.dB.parameters))
    }

    /// The reference configuration has no key (every run before it decodes unchanged); the choice round-trips.
    @Test func theChoiceIsStoredOnlyWhenItIsNotTheReference() throws {
        let reference = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Self.configuration(nil))) as! [String: Any]
        #expect(reference["backwardCycle"] == nil)
        let chosen = Self.configuration(.backTranslation)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(chosen)) as! [String: Any]
        #expect(json["backwardCycle"] as? String == "back-translation")
        #expect(try JSONDecoder().decode(CycleGANConfiguration.self, from: JSONEncoder().encode(chosen)) == chosen)
    }
}
