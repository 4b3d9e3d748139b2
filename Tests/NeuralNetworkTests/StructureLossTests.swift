import Foundation
import Testing
import TestSupport
@testable import NeuralNetwork

/// The MIND structure-consistency loss against an independent PyTorch float64 implementation differentiated by
/// autograd (structure.safetensors, make_structure_goldens.py), and the descriptor's defining property.
@Suite struct StructureLossTests {
    struct Case: Decodable {
        var name: String, distance: Int, epsilon: Float, scale: Float, channel: Int
    }

    static let cases = TorchGoldens.cases(in: "structure.safetensors", as: [Case].self)

    @Test func fixturesArePresent() { #expect(Self.cases.count == 2) }

    @Test(arguments: cases.map(\.name))
    func matchesPyTorch(_ name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let archive = try TorchGoldens.archive("structure.safetensors")
        func tensor(_ field: String) throws -> Tensor {
            let t = try archive.tensor(named: "\(name).\(field)")
            return Tensor(shape: t.shape, values: t.values)
        }
        let structure = StructureLoss(distance: c.distance, epsilon: c.epsilon)
        let image = try tensor("image"), reference = try tensor("reference")
        let target = Tensor(shape: structure.descriptorShape(for: reference.shape))
        structure.descriptor(of: reference, channel: c.channel, into: target)
        let descriptor = Tensor(shape: structure.descriptorShape(for: image.shape))
        structure.descriptor(of: image, channel: c.channel, into: descriptor)
        #expect(target.shape == (try tensor("reference_descriptor")).shape)

        // Other channels of the gradient must be left alone, and the loss's channel overwritten.
        let gradient = Tensor(shape: image.shape)
        gradient.fill(7)
        let loss = structure.loss(image, channel: c.channel, target: target, scale: c.scale, gradient: gradient)
        let expectedLoss = try archive.tensor(named: "\(name).loss").values[0]
        let plane = image.shape[2] * image.shape[3], channels = image.shape[1]
        var gradientOfChannel: [Float] = [], otherChannels: [Float] = []
        for b in 0..<image.shape[0] {
            for ch in 0..<channels {
                let values = Array(gradient.data[((b * channels + ch) * plane)..<((b * channels + ch + 1) * plane)])
                if ch == c.channel { gradientOfChannel += values } else { otherChannels += values }
            }
        }
        let expectedGradient = try archive.tensor(named: "\(name).grad_image").values
        var expectedOfChannel: [Float] = []
        for b in 0..<image.shape[0] {
            let start = (b * channels + c.channel) * plane
            expectedOfChannel += Array(expectedGradient[start..<(start + plane)])
        }
        let errors = [
            ("reference descriptor", TorchGoldens.relativeError(target.toArray(), try archive.tensor(named: "\(name).reference_descriptor").values)),
            ("descriptor", TorchGoldens.relativeError(descriptor.toArray(), try archive.tensor(named: "\(name).descriptor").values)),
            ("loss", Double(abs(loss - expectedLoss) / abs(expectedLoss))),
            ("gradient", TorchGoldens.relativeError(gradientOfChannel, expectedOfChannel)),
        ]
        for (field, error) in errors { #expect(error <= 1e-5, "\(name) \(field): relative error \(error)") }
        #expect(otherChannels.allSatisfy { $0 == 7 }, "\(name): the other channels' gradient was touched")
        #expect(expectedOfChannel.contains { $0 != 0 }, "\(name): a golden gradient of zeros proves nothing")

        // accumulate adds to what is there.
        let accumulated = Tensor(shape: image.shape)
        accumulated.fill(1)
        structure.loss(image, channel: c.channel, target: target, scale: c.scale, gradient: accumulated, accumulate: true)
        let sums = accumulated.toArray(), single = gradient.toArray()
        for b in 0..<image.shape[0] {
            let start = (b * channels + c.channel) * plane
            for i in start..<(start + plane) { #expect(abs(sums[i] - (single[i] + 1)) <= 1e-6) }
        }
    }

    /// MIND depends on which neighbours are alike, not on contrast: inverting and shifting the intensities (bone is
    /// dark in MR and bright in CT) gives the same descriptor, so the loss between them is 0.
    @Test func descriptorIgnoresContrastInversion() {
        var random = SystemRandomNumberGenerator()
        let h = 20, w = 23
        var values = [Float](repeating: 0, count: h * w)
        for y in 0..<h { for x in 0..<w { values[y * w + x] = (x > 11 ? 0.9 : -0.2) + (y > 9 ? 0.5 : 0) + Float.random(in: -0.05...0.05, using: &random) } }
        let image = Tensor(shape: [1, 1, h, w], values: values)
        let inverted = Tensor(shape: [1, 1, h, w], values: values.map { 0.3 - $0 })
        let structure = StructureLoss()
        let a = Tensor(shape: structure.descriptorShape(for: image.shape)), b = Tensor(shape: a.shape)
        structure.descriptor(of: image, into: a)
        structure.descriptor(of: inverted, into: b)
        #expect(TorchGoldens.relativeError(a.toArray(), b.toArray()) <= 1e-5)
        #expect(structure.loss(inverted, target: a) <= 1e-5)
        // …whereas a shifted edge is a different structure.
        let shifted = Tensor(shape: [1, 1, h, w], values: (0..<(h * w)).map { values[($0 / w) * w + max(0, $0 % w - 3)] })
        #expect(structure.loss(shifted, target: a) > 0.01)
    }
}
