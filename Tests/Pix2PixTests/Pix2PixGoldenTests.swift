import SyntheticCT
import Networks
import CycleGAN
import Foundation
import NeuralNetwork
import Safetensors
import Testing
import TestSupport
@testable import Pix2Pix

/// The U-Net generator and one pix2pix training step against PyTorch run in float64
/// (Tests/TestSupport/Fixtures/torch/unet_io.safetensors and pix2pix_step.safetensors, make_pix2pix_goldens.py;
/// the reference networks are Pipelines/pytorch_reference_networks.py, module for module as
/// pytorch-CycleGAN-and-pix2pix's, so the state_dict names are the reference's).
///
/// Measured with TorchGoldens.relativeError (max |ours − PyTorch| / max |PyTorch| per tensor), each ≤ 1e-4:
/// outputs, input and parameter gradients, BatchNorm running statistics after the pass; for the step the four
/// losses, G's synthetic CT, the step's gradients (D step for D, G step for G) and every weight and buffer after
/// both Adam steps. PyTorch's own float32 against the same reference is recorded in the fixtures (≈ 1e-6).
@Suite struct Pix2PixGoldenTests {
    static let tolerance = 1e-4

    static func tensor(_ archive: SafetensorsArchive, _ name: String) throws -> Tensor {
        let t = try archive.tensor(named: name)
        return Tensor(shape: t.shape, values: t.values)
    }

    struct UNetCase: Decodable {
        var config: UNetConfiguration
        var zero_gradients: [String]
    }

    @Test(arguments: ["batch", "instance"])
    func unetForwardAndBackwardMatchPyTorch(norm: String) throws {
        let archive = try TorchGoldens.archive("unet_io.safetensors")
        let cases = try TorchGoldens.metadata(archive, "cases", as: [String: UNetCase].self)
        let c = try #require(cases[norm])
        #expect(c.config.norm.rawValue == norm)
        let net = UNetGenerator(c.config)
        try net.load(from: archive, prefix: "\(norm).before.")
        let input = try Self.tensor(archive, "\(norm).input")
        let record = LayerRecord()
        let output = net.forward(input, record: record)
        let expected = try archive.tensor(named: "\(norm).output")
        #expect(output.shape == expected.shape)
        #expect(TorchGoldens.relativeError(output.toArray(), expected.values) <= Self.tolerance)
        let gradInput = Tensor(shape: input.shape)
        net.backward(try Self.tensor(archive, "\(norm).grad_output"), record: record, gradInput: gradInput)
        #expect(TorchGoldens.relativeError(gradInput.toArray(), try archive.tensor(named: "\(norm).grad_input").values) <= Self.tolerance)
        let largest = try net.parameters.map { try TorchGoldens.maximumMagnitude(archive.tensor(named: "\(norm).grad.\($0.name)").values) }.max() ?? 0
        for p in net.parameters {
            let name = "grad.\(p.name)"
            let reference = try archive.tensor(named: "\(norm).\(name)").values
            if c.zero_gradients.contains(name) {
                // A bias right before an instance norm: its exact gradient is 0, float32 gives rounding noise.
                #expect(TorchGoldens.maximumMagnitude(p.gradient.toArray()) <= 1e-5 * largest, "\(p.name)")
            } else {
                #expect(TorchGoldens.relativeError(p.gradient.toArray(), reference) <= Self.tolerance, "\(p.name)")
            }
        }
        for b in net.buffers where !b.name.hasSuffix("num_batches_tracked") {
            #expect(TorchGoldens.relativeError(b.value.toArray(), try archive.tensor(named: "\(norm).after.\(b.name)").values) <= Self.tolerance, "\(b.name)")
        }
        // The reference's names, exactly: every parameter and buffer of the state_dict, nothing else.
        let names = Set(archive.names.filter { $0.hasPrefix("\(norm).before.") }.map { String($0.dropFirst("\(norm).before.".count)) })
        #expect(names == Set(net.parameters.map(\.name) + net.buffers.map(\.name)))
    }

    struct StepCase: Decodable {
        var ganLoss: String
        var lambdaL1: Float
        var lambdaGAN: Float
        var l1InBody: Bool
        var losses: [String: Double]
    }

    @Test(arguments: ["reference", "body_lsgan", "l1_only"])
    func oneStepMatchesPyTorch(name: String) throws {
        let archive = try TorchGoldens.archive("pix2pix_step.safetensors")
        let cases = try TorchGoldens.metadata(archive, "cases", as: [String: StepCase].self)
        let c = try #require(cases[name])
        let unet = try TorchGoldens.metadata(archive, "generator", as: UNetConfiguration.self)
        var configuration = PairedRunConfiguration()
        configuration.preprocessing.sliceSize = 32
        configuration.model.ndf = 4
        configuration.model.discriminatorLayers = 3
        configuration.model.norm = unet.norm   // the fixture's networks: pix2pix's BatchNorm (G and D)
        configuration.model.ganLoss = try #require(.init(rawValue: c.ganLoss))
        configuration.model.lambdaL1 = c.lambdaL1
        configuration.model.lambdaGAN = c.lambdaGAN
        configuration.model.l1InBody = c.l1InBody
        let model = Pix2PixModel(configuration: configuration, unet: unet)
        #expect((model.discriminator != nil) == (c.lambdaGAN > 0))
        try model.generator.load(from: archive, prefix: "before.G.")
        if let d = model.discriminator { try d.load(from: archive, prefix: "before.D.") }
        let batch = PairedBatch(mr: try Self.tensor(archive, "real_A"), ct: try Self.tensor(archive, "real_B"),
                                body: try archive.tensor(named: "body").values)

        let losses = model.trainStep(batch, learningRate: 2e-4)

        #expect(Set(losses.named.map(\.name)) == Set(c.losses.keys))
        for (key, expected) in c.losses {
            let ours = try #require(losses.named.first { $0.name == key }?.value)
            #expect(abs(Double(ours) - expected) / abs(expected) <= Self.tolerance, "\(key): \(ours) vs PyTorch \(expected)")
        }
        let fake = try #require(model.recordG.output)
        #expect(TorchGoldens.relativeError(fake.toArray(), try archive.tensor(named: "\(name).fake_B").values) <= Self.tolerance)
        var networks: [(String, SequentialNetwork)] = [("G", model.generator)]
        if let d = model.discriminator { networks.append(("D", d)) }
        for (role, network) in networks {
            for p in network.parameters {
                let grad = try archive.tensor(named: "\(name).grad.\(role).\(p.name)").values
                #expect(TorchGoldens.relativeError(p.gradient.toArray(), grad) <= Self.tolerance, "gradient \(role).\(p.name)")
                let after = try archive.tensor(named: "\(name).after.\(role).\(p.name)").values
                #expect(TorchGoldens.relativeError(p.value.toArray(), after) <= Self.tolerance, "weight \(role).\(p.name)")
            }
            for b in network.buffers {
                let after = try archive.tensor(named: "\(name).after.\(role).\(b.name)").values
                if b.name.hasSuffix("num_batches_tracked") {
                    #expect(b.value.toArray() == after, "\(role).\(b.name)")
                } else {
                    #expect(TorchGoldens.relativeError(b.value.toArray(), after) <= Self.tolerance, "buffer \(role).\(b.name)")
                }
            }
        }
    }

    /// The loop frees the step's buffers before validating (`releaseStepBuffers`): the next step allocates them again
    /// and computes the same bits as a model that kept them.
    @Test func releasingTheStepBuffersChangesNoBit() throws {
        let archive = try TorchGoldens.archive("pix2pix_step.safetensors")
        let unet = try TorchGoldens.metadata(archive, "generator", as: UNetConfiguration.self)
        var configuration = PairedRunConfiguration()
        configuration.preprocessing.sliceSize = 32
        configuration.model.ndf = 4
        configuration.model.discriminatorLayers = 3
        configuration.model.norm = unet.norm
        let batch = PairedBatch(mr: try Self.tensor(archive, "real_A"), ct: try Self.tensor(archive, "real_B"),
                                body: try archive.tensor(named: "body").values)
        let kept = Pix2PixModel(configuration: configuration, unet: unet)
        let released = Pix2PixModel(configuration: configuration, unet: unet)
        for model in [kept, released] {
            try model.generator.load(from: archive, prefix: "before.G.")
            try #require(model.discriminator).load(from: archive, prefix: "before.D.")
            _ = model.trainStep(batch, learningRate: 2e-4)
        }
        released.releaseStepBuffers()
        #expect(released.recordG.output == nil && released.recordG.children.isEmpty)
        let a = kept.trainStep(batch, learningRate: 2e-4), b = released.trainStep(batch, learningRate: 2e-4)
        #expect(a.named.map(\.value) == b.named.map(\.value))
        let networks = [kept.generator, try #require(kept.discriminator)], others = [released.generator, try #require(released.discriminator)]
        for (n, m) in zip(networks, others) {
            for (p, q) in zip(n.parameters, m.parameters) { #expect(p.value.toArray() == q.value.toArray(), "\(p.name)") }
        }
    }

    /// A pix2pix U-Net saved by PyTorch (.pth) and converted by Pipelines/convert_pytorch_generator.py --family
    /// pix2pix loads as an mr2ct model (architecture from the metadata) and infers as PyTorch's eval mode does.
    @Test func convertedPix2PixGeneratorLoadsAndInfersAsPyTorch() throws {
        let model = try SyntheticCTModel.load(TorchGoldens.url("unet_pix2pix_G.safetensors"))
        let unet = try #require(model.generator as? UNetGenerator)
        #expect(unet.configuration == UNetConfiguration(inputChannels: 1, outputChannels: 1, ngf: 2, downsamplings: 5,
                                                        dropout: true, norm: .batch))
        #expect(model.preprocessing.sliceSize == 32)
        let io = try TorchGoldens.archive("unet_pix2pix_io.safetensors")
        let output = model.generator.infer(try Self.tensor(io, "input"))
        #expect(TorchGoldens.relativeError(output.toArray(), try io.tensor(named: "output").values) <= Self.tolerance)
    }
}
