import Foundation
import Testing
import NeuralNetwork
import MR2CTSupport
@testable import CycleGAN

/// The supervised term of semi-supervised training (issue 18 item 2) on a tiny CycleGAN (ngf 2, one residual block,
/// 8 × 8 slices, weights N(0, 0.02) from a fixed seed): its value and gradient against values computed here by hand,
/// its place in the generator step, and λ_sup = 0 as exactly the unpaired step.
@Suite struct SupervisedTermTests {
    static func configuration(lambda: Float?, inBody: Bool = false) -> CycleGANConfiguration {
        var c = CycleGANConfiguration(generator: .init(ngf: 2, residualBlocks: 1), discriminator: .init(ndf: 2, layers: 1), poolSize: 2)
        c.supervised = lambda.map { CycleGANSupervision(lambda: $0, inBody: inBody) }
        return c
    }

    static func image(_ seed: UInt64) -> Tensor {
        var r = SeededRandom(seed: seed)
        return Tensor(shape: [1, 1, 8, 8], values: (0..<64).map { _ in r.nextUnitFloat() * 1.6 - 0.8 })
    }

    /// A body-like mask: the central 6 × 5 block (30 of 64 pixels).
    static let mask: [Float] = (0..<64).map { i in (1...6).contains(i % 8) && (2...6).contains(i / 8) ? 1 : 0 }

    static var pair: CycleGANPair { CycleGANPair(realA: image(21), realB: image(22), mask: mask) }

    /// λ · Σ_mask |f − y| / |mask| in Double, and the derivative of that loss with respect to the bias of G_A's last
    /// convolution, which enters every output pixel as f = tanh(z + b): λ/|mask| · Σ_mask sign(f − y) · (1 − f²).
    static func handComputed(fake: [Float], target: [Float], mask: [Float]?, lambda: Double) -> (loss: Double, lastBias: Double) {
        var sum = 0.0, bias = 0.0, count = 0.0
        for i in 0..<fake.count where (mask?[i] ?? 1) == 1 {
            let f = Double(fake[i]), d = f - Double(target[i])
            sum += abs(d)
            bias += (d > 0 ? 1 : (d < 0 ? -1 : 0)) * (1 - f * f)
            count += 1
        }
        return (lambda * sum / count, lambda * bias / count)
    }

    @Test(arguments: [false, true])
    func termAndGradientMatchHandComputation(inBody: Bool) throws {
        let lambda: Float = 7
        let model = CycleGANModel(configuration: Self.configuration(lambda: lambda, inBody: inBody), seed: 4)
        let pair = Self.pair
        let inferred = model.gA.infer(pair.realA).toArray()
        model.optimizerG.zeroGradients()
        model.optimizerD.zeroGradients()
        let result = try #require(model.supervisedTerm(pair))
        let fake = result.fake.toArray()
        // The term's own application of G_A is the generator's output (inference computes the same function).
        #expect(zip(fake, inferred).allSatisfy { abs($0 - $1) <= 1e-5 })
        let expected = Self.handComputed(fake: fake, target: pair.realB.toArray(), mask: inBody ? Self.mask : nil, lambda: Double(lambda))
        #expect(expected.loss > 1)
        #expect(abs(Double(result.loss) - expected.loss) <= 1e-6 * expected.loss, "\(result.loss) vs \(expected.loss)")
        // G_A's last parameter is the bias of its last convolution (state_dict order).
        let bias = try #require(model.gA.parameters.last)
        #expect(bias.name.hasSuffix(".bias") && bias.value.count == 1)
        let got = Double(bias.gradient.toArray()[0])
        #expect(abs(expected.lastBias) > 1e-4)
        #expect(abs(got - expected.lastBias) <= 1e-5 * max(1, abs(expected.lastBias)), "\(got) vs \(expected.lastBias)")
        // Central differences of the hand-computed loss for the largest-gradient weights of the last convolution
        // (before tanh) and of the first (before an instance normalisation: a smaller step).
        let parameters = model.gA.parameters
        for (weight, h) in [(parameters[parameters.count - 2], Float(1e-3)), (parameters[0], Float(1e-4))] {
          let gradient = weight.gradient.toArray()
          let order = gradient.indices.sorted { abs(gradient[$0]) > abs(gradient[$1]) }
          for index in order.prefix(3) {
            let original = weight.value.data[index]
            func loss(_ value: Float) -> Double {
                weight.value.data[index] = value
                defer { weight.value.data[index] = original }
                return Self.handComputed(fake: model.gA.infer(pair.realA).toArray(), target: pair.realB.toArray(),
                                         mask: inBody ? Self.mask : nil, lambda: Double(lambda)).loss
            }
            let numeric = (loss(original + h) - loss(original - h)) / Double(2 * h)
            let analytic = Double(gradient[index])
            #expect(abs(numeric - analytic) <= 0.02 * abs(analytic) + 1e-3, "\(weight.name)[\(index)]: \(numeric) vs \(analytic)")
          }
        }
        // Only G_A gets a gradient.
        for p in model.gB.parameters + model.dA.parameters + model.dB.parameters {
            #expect(p.gradient.toArray().allSatisfy { $0 == 0 }, "\(p.name)")
        }
    }

    /// In `trainStep`, the term's gradient adds into G_A's parameter gradients before G's Adam step: the step's G_A
    /// gradients are the unpaired step's plus the term's alone (same weights, same seed); G_B's and the ten unpaired
    /// losses are exactly the unpaired step's.
    @Test func theStepAddsTheTermsGradientToGA() throws {
        let semi = CycleGANModel(configuration: Self.configuration(lambda: 30), seed: 8)
        let unpaired = CycleGANModel(configuration: Self.configuration(lambda: nil), seed: 8)
        let alone = CycleGANModel(configuration: Self.configuration(lambda: 30), seed: 8)
        let a = Self.image(1), b = Self.image(2), pair = Self.pair
        let withPair = semi.trainStep(realA: a, realB: b, pair: pair)
        var plain = unpaired.trainStep(realA: a, realB: b)
        alone.optimizerG.zeroGradients()
        let term = try #require(alone.supervisedTerm(pair))
        #expect(plain.supervised == nil)
        #expect(withPair.supervised == term.loss && term.loss > 0)
        plain.supervised = withPair.supervised
        #expect(withPair == plain)
        for (s, (u, t)) in zip(semi.gA.parameters, zip(unpaired.gA.parameters, alone.gA.parameters)) {
            let sum = zip(u.gradient.toArray(), t.gradient.toArray()).map { $0 + $1 }
            let scale = max(1e-3, sum.map(abs).max() ?? 0)
            let worst = zip(s.gradient.toArray(), sum).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-5 * scale, "\(s.name): \(worst)")
            #expect(t.gradient.toArray().contains { $0 != 0 }, "\(s.name) got no supervised gradient")
        }
        for (s, u) in zip(semi.gB.parameters, unpaired.gB.parameters) { #expect(s.gradient.toArray() == u.gradient.toArray(), "\(s.name)") }
        // Adam then moved G_A differently, and the pair row is in the visuals.
        #expect(semi.gA.parameters[0].value.toArray() != unpaired.gA.parameters[0].value.toArray())
        #expect(semi.gB.parameters[0].value.toArray() == unpaired.gB.parameters[0].value.toArray())
        let visuals = semi.lastVisuals
        #expect(visuals[.pairA]?.toArray() == pair.realA.toArray() && visuals[.pairB]?.toArray() == pair.realB.toArray())
        #expect(visuals[.pairFakeB]?.toArray() == term.fake.toArray())
        #expect(withPair.keyed.named.map(\.name).last == "G_sup" && !plain.keyed.named.isEmpty)
        #expect(!unpaired.trainStep(realA: a, realB: b).keyed.named.contains { $0.name == "G_sup" })
    }

    /// λ_sup = 0: the same losses and bit-identical weights of all four networks as the unpaired step, step after step.
    @Test func zeroWeightIsExactlyTheUnpairedStep() {
        let semi = CycleGANModel(configuration: Self.configuration(lambda: 0), seed: 5)
        let unpaired = CycleGANModel(configuration: Self.configuration(lambda: nil), seed: 5)
        for i in 0..<3 {
            let a = Self.image(UInt64(30 + 2 * i)), b = Self.image(UInt64(31 + 2 * i))
            var l = semi.trainStep(realA: a, realB: b, pair: CycleGANPair(realA: Self.image(UInt64(50 + i)), realB: Self.image(UInt64(60 + i))))
            #expect(l.supervised == 0)
            l.supervised = nil
            #expect(l == unpaired.trainStep(realA: a, realB: b))
        }
        for (s, u) in zip(semi.gA.parameters + semi.gB.parameters + semi.dA.parameters + semi.dB.parameters,
                          unpaired.gA.parameters + unpaired.gB.parameters + unpaired.dA.parameters + unpaired.dB.parameters) {
            #expect(s.value.toArray() == u.value.toArray(), "\(s.name)")
        }
        #expect(semi.lastVisuals[.pairFakeB] == nil)
    }

    /// Configurations without the key (all unpaired runs, before and after) decode as unpaired and encode without it.
    @Test func unpairedConfigurationsHaveNoSupervisionKey() throws {
        let unpaired = Self.configuration(lambda: nil)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(unpaired)) as! [String: Any]
        #expect(json["supervised"] == nil)
        #expect(try JSONDecoder().decode(CycleGANConfiguration.self, from: JSONEncoder().encode(unpaired)) == unpaired)
        let semi = Self.configuration(lambda: 12, inBody: true)
        let decoded = try JSONDecoder().decode(CycleGANConfiguration.self, from: JSONEncoder().encode(semi))
        #expect(decoded.supervised == CycleGANSupervision(lambda: 12, inBody: true))
    }
}
