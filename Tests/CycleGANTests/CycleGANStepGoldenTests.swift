import Foundation
import Testing
import CycleGAN
import NeuralNetwork
import Safetensors
import TestSupport
import Networks

/// One complete CycleGAN iteration (generator step, then discriminator step; LSGAN, λ 10, identity 0.5, fresh
/// image pools, Adam lr 2e-4 betas 0.5/0.999) against pytorch-CycleGAN-and-pix2pix's `optimize_parameters` run
/// in float64 (Tests/TestSupport/Fixtures/torch/cyclegan_step.safetensors, make_goldens.py).
///
/// Measured with TorchGoldens.relativeError (max |ours − PyTorch| / max |PyTorch| per tensor):
/// - the eight losses, relative error ≤ 1e-4 each;
/// - generated images (fake, reconstructed, identity) ≤ 1e-4;
/// - the step's parameter gradients (G step for G_A/G_B, D step for D_A/D_B) ≤ 1e-4 per tensor;
/// - the weights after the step ≤ 1e-4 per tensor.
/// Biases right before an InstanceNorm have an exactly zero gradient; in float32 it is rounding noise (PyTorch's
/// float32 too), and Adam's first step turns any non-zero noise g into a move of lr·|g|/(|g|+eps), up to lr. For
/// those the test checks that the gradient is noise (≤ 1e-5 of the network's largest) and that the weight moved by
/// at most lr. PyTorch's own float32 run of this step, against the same float64 reference, is recorded in the
/// fixture: losses 2e-7, gradients 3e-6, images 3e-6.
@Suite struct CycleGANStepGoldenTests {
    static let tolerance = 1e-4

    struct Settings: Decodable {
        var lambdaA: Float, lambdaB: Float, lambdaIdentity: Float, poolSize: Int, learningRate: Float, beta1: Float
    }

    /// Batch 1 (the reference's default) and a batch of 2 (issue 21: per-image InstanceNorm, mean losses, the pools
    /// deciding per image).
    @Test(arguments: ["cyclegan_step.safetensors", "cyclegan_step_batch2.safetensors"])
    func oneIterationMatchesPyTorch(fixture: String) throws {
        let archive = try TorchGoldens.archive(fixture)
        let settings = try TorchGoldens.metadata(archive, "cyclegan", as: Settings.self)
        var configuration = CycleGANConfiguration()
        configuration.generator = try TorchGoldens.metadata(archive, "generator", as: GeneratorConfiguration.self)
        configuration.discriminator = try TorchGoldens.metadata(archive, "discriminator", as: DiscriminatorConfiguration.self)
        configuration.ganLoss = .lsgan
        configuration.lambdaA = settings.lambdaA
        configuration.lambdaB = settings.lambdaB
        configuration.lambdaIdentity = settings.lambdaIdentity
        configuration.poolSize = settings.poolSize
        configuration.learningRate = settings.learningRate
        configuration.beta1 = settings.beta1
        let gan = CycleGANModel(configuration: configuration, seed: 7)
        let networks: [(String, SequentialNetwork)] = [("G_A", gan.gA), ("G_B", gan.gB), ("D_A", gan.dA), ("D_B", gan.dB)]
        for (role, network) in networks {
            try network.load(from: archive, prefix: "before.\(role).")
        }
        func tensor(_ name: String) throws -> Tensor {
            let t = try archive.tensor(named: name)
            return Tensor(shape: t.shape, values: t.values)
        }

        let losses = gan.trainStep(realA: try tensor("real_A"), realB: try tensor("real_B"))

        let expectedLosses = try TorchGoldens.metadata(archive, "losses", as: [String: Double].self)
        let ours: [String: Float] = ["dA": losses.dA, "gA": losses.gA, "cycleA": losses.cycleA, "idtA": losses.idtA,
                                     "dB": losses.dB, "gB": losses.gB, "cycleB": losses.cycleB, "idtB": losses.idtB]
        #expect(Set(expectedLosses.keys) == Set(ours.keys))
        for (name, expected) in expectedLosses {
            let error = abs(Double(ours[name]!) - expected) / abs(expected)
            #expect(error <= Self.tolerance, "loss \(name): \(ours[name]!) vs PyTorch \(expected)")
        }

        let visuals = gan.lastVisuals
        for (ourName, theirName) in [(CycleGANImageKey.fakeB, "fake_B"), (.recA, "rec_A"), (.fakeA, "fake_A"), (.recB, "rec_B"),
                                     (.idtA, "idt_A"), (.idtB, "idt_B")] {
            let image = try #require(visuals[ourName], "lastVisuals[\(ourName)]")
            let error = TorchGoldens.relativeError(image.toArray(), try archive.tensor(named: theirName).values)
            #expect(error <= Self.tolerance, "\(ourName): \(error)")
        }

        let zeroGradients = Set(try TorchGoldens.metadata(archive, "zero_gradients", as: [String].self))
        let learningRate = Double(settings.learningRate)
        var worstGradient = (0.0, ""), worstWeight = (0.0, "")
        for (role, network) in networks {
            let largest = network.parameters.map { TorchGoldens.maximumMagnitude($0.gradient.toArray()) }.max() ?? 0
            for p in network.parameters {
                let key = "\(role).\(p.name)"
                let gradient = p.gradient.toArray(), after = p.value.toArray()
                if zeroGradients.contains(key) {
                    #expect(TorchGoldens.maximumMagnitude(gradient) <= 1e-5 * largest, "\(key): gradient should be ~0")
                    let before = try archive.tensor(named: "before.\(key)").values
                    #expect(TorchGoldens.maximumAbsoluteDifference(after, before) <= learningRate * 1.001, "\(key): moved more than lr")
                    continue
                }
                let gradientError = TorchGoldens.relativeError(gradient, try archive.tensor(named: "grad.\(key)").values)
                #expect(gradientError <= Self.tolerance, "gradient \(key): \(gradientError)")
                if gradientError > worstGradient.0 { worstGradient = (gradientError, key) }
                let weightError = TorchGoldens.relativeError(after, try archive.tensor(named: "after.\(key)").values)
                #expect(weightError <= Self.tolerance, "weights after the step, \(key): \(weightError)")
                if weightError > worstWeight.0 { worstWeight = (weightError, key) }
            }
        }
        #expect(gan.optimizerG.stepCount == 1 && gan.optimizerD.stepCount == 1)
        print("CycleGAN step vs PyTorch: losses \(expectedLosses.map { abs(Double(ours[$0.key]!) - $0.value) / abs($0.value) }.max()!), "
              + "worst gradient \(worstGradient.0) (\(worstGradient.1)), worst weight \(worstWeight.0) (\(worstWeight.1))")
    }
}
