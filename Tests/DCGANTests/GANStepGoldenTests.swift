import Foundation
import Testing
import DCGAN
import NeuralNetwork
import Safetensors
import TestSupport

/// One training iteration of PyTorch's examples/dcgan main.py (D on real, D on G(z) detached, Adam step of D; G
/// through the updated D, Adam step of G; BCELoss; Adam 2e-4 betas 0.5/0.999) run in float64, for the DC-GAN and
/// for the conditional GAN (Tests/TestSupport/Fixtures/torch/{dcgan,cgan}_step.safetensors, make_gan_goldens.py).
///
/// TorchGoldens.relativeError per tensor, tolerance 1e-4: the five printed values (Loss_D, Loss_G, D(x), D(G(z))
/// before and after D's step), the fake images, every parameter gradient of the step, every parameter and
/// BatchNorm buffer after it (running statistics after three D passes and one G pass; num_batches_tracked exact).
/// PyTorch's own float32 run against the same reference is in the fixtures' metadata (gradients ≈ 1e-5).
@Suite struct GANStepGoldenTests {
    static let tolerance = 1e-4

    struct Settings: Decodable {
        var imageSize: Int, channels: Int, nz: Int, ngf: Int, ndf: Int, batchSize: Int
        var classes: Int?, embeddingDimension: Int?, labelChannels: Int?
    }

    @Test(arguments: ["dcgan_step.safetensors", "cgan_step.safetensors"])
    func oneIterationMatchesPyTorch(_ fixture: String) throws {
        let archive = try TorchGoldens.archive(fixture)
        let s = try TorchGoldens.metadata(archive, "configuration", as: Settings.self)
        var configuration = GANConfiguration()
        configuration.imageSize = s.imageSize
        configuration.channels = s.channels
        configuration.nz = s.nz
        configuration.ngf = s.ngf
        configuration.ndf = s.ndf
        configuration.batchSize = s.batchSize
        if let classes = s.classes {
            configuration.family = .cgan
            configuration.classNames = (0..<classes).map(String.init)
            configuration.embeddingDimension = s.embeddingDimension!
            configuration.labelChannels = s.labelChannels!
        }
        try configuration.validate()
        let gan = ImageGAN(configuration: configuration)
        try gan.generator.load(from: archive, prefix: "before.G.", requireAllTensorsUsed: true)
        try gan.discriminator.load(from: archive, prefix: "before.D.", requireAllTensorsUsed: true)
        func tensor(_ name: String) throws -> Tensor {
            let t = try archive.tensor(named: name)
            return Tensor(shape: t.shape, values: t.values)
        }
        let labels = s.classes == nil ? nil : try tensor("labels")
        let batch = GANBatch(real: try tensor("real"), labels: labels, noise: try tensor("noise"))
        let losses = gan.trainStep(batch, learningRate: 2e-4)

        let expected = try TorchGoldens.metadata(archive, "losses", as: [String: Double].self)
        #expect(Set(expected.keys) == Set(GANLossKey.allCases.map(\.rawValue)))
        var worstLoss = 0.0
        for key in GANLossKey.allCases {
            let ours = Double(try #require(losses[key])), theirs = try #require(expected[key.rawValue])
            let error = abs(ours - theirs) / abs(theirs)
            worstLoss = max(worstLoss, error)
            #expect(error <= Self.tolerance, "\(fixture) \(key.rawValue): \(ours) vs PyTorch \(theirs)")
        }
        let fakeError = TorchGoldens.relativeError(try #require(gan.lastFake).toArray(), try archive.tensor(named: "fake").values)
        #expect(fakeError <= Self.tolerance, "\(fixture) fake: \(fakeError)")

        var worstGradient = (0.0, ""), worstAfter = (0.0, "")
        for (role, network) in [("G", gan.generator), ("D", gan.discriminator)] {
            for p in network.parameters {
                let key = "\(role).\(p.name)"
                let g = TorchGoldens.relativeError(p.gradient.toArray(), try archive.tensor(named: "grad.\(key)").values)
                #expect(g <= Self.tolerance, "\(fixture) gradient \(key): \(g)")
                if g > worstGradient.0 { worstGradient = (g, key) }
            }
            for (name, value) in network.parameters.map({ ($0.name, $0.value) }) + network.buffers.map({ ($0.name, $0.value) }) {
                let key = "\(role).\(name)"
                let expectedAfter = try archive.tensor(named: "after.\(key)").values
                if name.hasSuffix("num_batches_tracked") {
                    #expect(value.toArray() == expectedAfter, "\(fixture) \(key)")
                    continue
                }
                let e = TorchGoldens.relativeError(value.toArray(), expectedAfter)
                #expect(e <= Self.tolerance, "\(fixture) after the step, \(key): \(e)")
                if e > worstAfter.0 { worstAfter = (e, key) }
            }
        }
        #expect(gan.optimizerD.stepCount == 1 && gan.optimizerG.stepCount == 1)
        print("\(fixture): losses \(worstLoss), fake \(fakeError), worst gradient \(worstGradient.0) (\(worstGradient.1)), "
              + "worst after-step tensor \(worstAfter.0) (\(worstAfter.1))")
    }
}
