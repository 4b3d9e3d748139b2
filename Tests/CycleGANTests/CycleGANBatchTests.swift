import Foundation
import Testing
import NeuralNetwork
import MR2CTSupport
@testable import CycleGAN

/// Issue 21, the batch dimension: a batch-2 step's gradients are the mean of the gradients of two batch-1 steps of
/// the same images from the same weights (instance normalisation per image, losses averaged over the batch), which is
/// what data-parallel training relies on when it averages the ranks' gradients.
@Suite struct CycleGANBatchTests {
    func images(_ seed: UInt64, count: Int, size: Int = 32) -> [[Float]] {
        var r = SeededRandom(seed: seed)
        return (0..<count).map { _ in (0..<(size * size)).map { _ in r.nextUnitFloat() * 2 - 1 } }
    }

    func stack(_ images: [[Float]], size: Int = 32) -> Tensor {
        Tensor(shape: [images.count, 1, size, size], values: images.flatMap { $0 })
    }

    /// Every parameter gradient of the four networks, by network and parameter name.
    func gradients(_ model: CycleGANModel) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (role, network) in [("G_A", model.gA.parameters), ("G_B", model.gB.parameters), ("D_A", model.dA.parameters), ("D_B", model.dB.parameters)] {
            for p in network { out["\(role).\(p.name)"] = p.gradient.toArray() }
        }
        return out
    }

    /// pool 0 and pool 50 (still filling: the pool returns the images themselves), with and without the MIND term.
    @Test(arguments: [(0, Float(0)), (50, Float(0)), (0, Float(2))])
    func batchTwoGradientIsTheMeanOfTwoBatchOneGradients(pool: Int, structure: Float) throws {
        let configuration = CycleGANConfiguration(generator: .init(ngf: 4, residualBlocks: 1), discriminator: .init(ndf: 4, layers: 2),
                                                  lambdaStructure: structure, poolSize: pool)
        let a = images(1, count: 2), b = images(2, count: 2)
        let batched = CycleGANModel(configuration: configuration, seed: 4)
        let batchLosses = batched.trainStep(realA: stack(a), realB: stack(b))
        var single: [[String: [Float]]] = [], singleLosses: [CycleGANLosses] = []
        for k in 0..<2 {
            let model = CycleGANModel(configuration: configuration, seed: 4)
            singleLosses.append(model.trainStep(realA: stack([a[k]]), realB: stack([b[k]])))
            single.append(gradients(model))
        }
        let g = gradients(batched)
        #expect(g.count == single[0].count && g.count > 20)
        // Relative to the network's largest gradient: the biases right before an InstanceNorm have an exactly zero
        // gradient, which in float32 is rounding noise (see CycleGANStepGoldenTests), so their own largest value is
        // no scale.
        var largest: [String: Double] = [:]
        for (name, values) in single[0] {
            let role = String(name.prefix(3))
            largest[role] = max(largest[role] ?? 0, values.reduce(0) { max($0, abs(Double($1))) })
        }
        var worst = (0.0, "")
        for (name, values) in g {
            let g0 = try #require(single[0][name]), g1 = try #require(single[1][name])
            let mean = zip(g0, g1).map { ($0 + $1) / 2 }
            let scale = try #require(largest[String(name.prefix(3))])
            let difference = zip(values, mean).reduce(0.0) { max($0, abs(Double($1.0 - $1.1))) }
            if difference / scale > worst.0 { worst = (difference / scale, name) }
            // The gradient is not the same for both images (else the check would not show the averaging).
            if name.hasSuffix("weight") {
                #expect(zip(g0, g1).contains { abs($0 - $1) > 1e-3 * Float(scale) }, "\(name)")
            }
        }
        #expect(worst.0 < 1e-5, "largest difference relative to the network's largest gradient: \(worst)")
        // The losses are the batch means too.
        for key in CycleGANLossKey.allCases {
            let mean = (singleLosses[0][key] + singleLosses[1][key]) / 2
            #expect(abs(batchLosses[key] - mean) <= 1e-5 * max(abs(mean), 1e-3), "\(key): \(batchLosses[key]) vs \(mean)")
        }
    }

    /// The pool decides per image of a batch, in batch order, as pytorch-CycleGAN-and-pix2pix's `ImagePool.query`:
    /// replayed here with the same generator.
    @Test func poolDecidesPerImage() throws {
        var pool = ImagePool(capacity: 2, seed: 11)
        var replay = SeededRandom(seed: 11)
        let first = stack(images(5, count: 3, size: 4), size: 4)
        // Filling: the first two are stored and returned; the third is decided by the generator.
        let answer = pool.query(first)
        var stored = [Array(first.data[0..<16]), Array(first.data[16..<32])]
        var expected = Array(first.data[0..<32])
        func decide(_ image: [Float]) -> [Float] {
            if replay.nextUnitDouble() > 0.5 {
                let slot = Int(replay.next() % 2)
                let old = stored[slot]
                stored[slot] = image
                return old
            }
            return image
        }
        expected += decide(Array(first.data[32..<48]))
        #expect(answer.toArray() == expected)
        #expect(answer.shape == [3, 1, 4, 4])
        let second = stack(images(6, count: 4, size: 4), size: 4)
        let again = pool.query(second).toArray()
        let expectedAgain = (0..<4).flatMap { decide(Array(second.data[($0 * 16)..<(($0 + 1) * 16)])) }
        #expect(again == expectedAgain)
        #expect(pool.images == stored)
        // A batch of one keeps the old behaviour: the same tensor while the pool fills.
        var small = ImagePool(capacity: 1, seed: 1)
        let one = stack(images(7, count: 1, size: 4), size: 4)
        #expect(small.query(one) === one)
    }
}
