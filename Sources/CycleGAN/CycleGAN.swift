import NeuralNetwork
import MR2CTSupport

/// Options of the CycleGAN model pair and its optimisation (defaults of pytorch-CycleGAN-and-pix2pix).
public struct CycleGANConfiguration: Codable, Sendable, Hashable {
    public var generator = GeneratorConfiguration()
    public var discriminator = DiscriminatorConfiguration()
    public var ganLoss: GANLoss = .lsgan
    public var lambdaA: Float = 10
    public var lambdaB: Float = 10
    public var lambdaIdentity: Float = 0.5
    public var poolSize = 50
    public var learningRate: Float = 2e-4
    public var beta1: Float = 0.5

    public init(generator: GeneratorConfiguration = .init(), discriminator: DiscriminatorConfiguration = .init(),
                ganLoss: GANLoss = .lsgan, lambdaA: Float = 10, lambdaB: Float = 10, lambdaIdentity: Float = 0.5,
                poolSize: Int = 50, learningRate: Float = 2e-4, beta1: Float = 0.5) {
        self.generator = generator
        self.discriminator = discriminator
        self.ganLoss = ganLoss
        self.lambdaA = lambdaA
        self.lambdaB = lambdaB
        self.lambdaIdentity = lambdaIdentity
        self.poolSize = poolSize
        self.learningRate = learningRate
        self.beta1 = beta1
    }
}

/// Unpaired image-to-image translation with cycle consistency (Zhu et al. 2017): generators G_A: A → B and
/// G_B: B → A, discriminators D_A (judges domain B) and D_B (judges domain A), trained as
/// pytorch-CycleGAN-and-pix2pix `CycleGANModel.optimize_parameters` does. Here A is MR and B is CT.
public final class CycleGAN: @unchecked Sendable {
    public let configuration: CycleGANConfiguration
    public let gA: ResnetGenerator
    public let gB: ResnetGenerator
    public let dA: NLayerDiscriminator
    public let dB: NLayerDiscriminator
    public let optimizerG: Adam
    public let optimizerD: Adam
    /// fake_A_pool (images G_B made, shown to D_B) and fake_B_pool (images G_A made, shown to D_A).
    public var poolA: ImagePool
    public var poolB: ImagePool

    // One record per network application; reused every iteration.
    private let recordFakeB = LayerRecord(), recordRecB = LayerRecord(), recordIdtA = LayerRecord()
    private let recordFakeA = LayerRecord(), recordRecA = LayerRecord(), recordIdtB = LayerRecord()
    private let recordDA = LayerRecord(), recordDB = LayerRecord()
    private var buffers: [String: Tensor] = [:]
    private var visuals: [String: Tensor] = [:]

    /// Builds the four networks with weights ~ N(0, 0.02) drawn from streams of `seed`, and both optimisers
    /// (Adam, betas (beta1, 0.999)).
    public init(configuration: CycleGANConfiguration, seed: UInt64) {
        self.configuration = configuration
        gA = ResnetGenerator(configuration.generator)
        var reverse = configuration.generator
        reverse.inputChannels = configuration.generator.outputChannels
        reverse.outputChannels = configuration.generator.inputChannels
        gB = ResnetGenerator(reverse)
        var discriminatorA = configuration.discriminator
        discriminatorA.inputChannels = configuration.generator.outputChannels
        var discriminatorB = configuration.discriminator
        discriminatorB.inputChannels = configuration.generator.inputChannels
        dA = NLayerDiscriminator(discriminatorA)
        dB = NLayerDiscriminator(discriminatorB)
        let streams = (0..<8).map { SeededRandom(seed: seed, stream: UInt64($0)) }
        var s = streams
        gA.initializeWeights(seed: s[0].next())
        gB.initializeWeights(seed: s[1].next())
        dA.initializeWeights(seed: s[2].next())
        dB.initializeWeights(seed: s[3].next())
        gA.seedDropout(s[4].next())
        gB.seedDropout(s[5].next())
        poolA = ImagePool(capacity: configuration.poolSize, seed: s[6].next())
        poolB = ImagePool(capacity: configuration.poolSize, seed: s[7].next())
        optimizerG = Adam(parameters: gA.parameters + gB.parameters, learningRate: configuration.learningRate,
                          beta1: configuration.beta1, beta2: 0.999)
        optimizerD = Adam(parameters: dA.parameters + dB.parameters, learningRate: configuration.learningRate,
                          beta1: configuration.beta1, beta2: 0.999)
    }

    /// The learning rate of both optimisers (set each iteration by the linear-decay schedule).
    public var learningRate: Float {
        get { optimizerG.learningRate }
        set { optimizerG.learningRate = newValue; optimizerD.learningRate = newValue }
    }

    /// The images of the last step (copies): realA, fakeB, recA, realB, fakeA, recB (and idtA, idtB when used).
    public var lastVisuals: [String: Tensor] { visuals.mapValues { $0.copy() } }

    private func buffer(_ name: String, like shape: [Int]) -> Tensor {
        if let t = buffers[name], t.shape == shape { return t }
        let t = Tensor(shape: shape)
        buffers[name] = t
        return t
    }

    /// One full iteration as pytorch-CycleGAN-and-pix2pix `optimize_parameters` (REFERENCE.md §2):
    /// forward fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A); generator step with
    /// D frozen (identity G_A(B), G_B(A); adversarial terms through D; cycle L1 × λ; identity × λ·λ_idt); then
    /// the discriminator step on real images and on pooled fakes (each D loss × 0.5); Adam on both.
    /// `realA`, `realB`: 1 × C × H × W.
    public func trainStep(realA: Tensor, realB: Tensor) -> CycleGANLosses {
        let c = configuration
        var losses = CycleGANLosses()

        // forward()
        let fakeB = gA.forward(realA, record: recordFakeB)
        let recA = gB.forward(fakeB, record: recordRecA)
        let fakeA = gB.forward(realB, record: recordFakeA)
        let recB = gA.forward(fakeA, record: recordRecB)

        // Generator step, discriminators frozen.
        optimizerG.zeroGradients()
        let gradFakeB = buffer("gradFakeB", like: fakeB.shape), gradFakeA = buffer("gradFakeA", like: fakeA.shape)
        let gradImageB = buffer("gradImageB", like: fakeB.shape), gradImageA = buffer("gradImageA", like: fakeA.shape)
        let lambdaIdtA = c.lambdaB * c.lambdaIdentity, lambdaIdtB = c.lambdaA * c.lambdaIdentity
        var idtA: Tensor?, idtB: Tensor?
        if c.lambdaIdentity > 0 {
            // idt_A = G_A(B) ~ B, idt_B = G_B(A) ~ A.
            let a = gA.forward(realB, record: recordIdtA)
            losses.idtA = Loss.l1(a, target: realB, scale: lambdaIdtA, gradient: gradImageB)
            gA.backward(gradImageB, record: recordIdtA)
            let b = gB.forward(realA, record: recordIdtB)
            losses.idtB = Loss.l1(b, target: realA, scale: lambdaIdtB, gradient: gradImageA)
            gB.backward(gradImageA, record: recordIdtB)
            idtA = a; idtB = b
        }
        // Adversarial terms through the frozen discriminators: D_A(G_A(A)) and D_B(G_B(B)) should look real.
        let predictionB = dA.forward(fakeB, record: recordDA)
        let gradPredictionB = buffer("gradPredictionB", like: predictionB.shape)
        losses.gA = c.ganLoss(predictionB, real: true, gradient: gradPredictionB)
        dA.backward(gradPredictionB, record: recordDA, gradInput: gradFakeB, parameterGradients: false)
        let predictionA = dB.forward(fakeA, record: recordDB)
        let gradPredictionA = buffer("gradPredictionA", like: predictionA.shape)
        losses.gB = c.ganLoss(predictionA, real: true, gradient: gradPredictionA)
        dB.backward(gradPredictionA, record: recordDB, gradInput: gradFakeA, parameterGradients: false)
        // Cycle terms: rec_A = G_B(fake_B) ~ A flows into fake_B; rec_B = G_A(fake_A) ~ B flows into fake_A.
        losses.cycleA = Loss.l1(recA, target: realA, scale: c.lambdaA, gradient: gradImageA)
        gB.backward(gradImageA, record: recordRecA, gradInput: gradImageB)
        add(gradImageB, into: gradFakeB)
        losses.cycleB = Loss.l1(recB, target: realB, scale: c.lambdaB, gradient: gradImageB)
        gA.backward(gradImageB, record: recordRecB, gradInput: gradImageA)
        add(gradImageA, into: gradFakeA)
        // Through the first applications into the generators' parameters (the real inputs need no gradient).
        gA.backward(gradFakeB, record: recordFakeB)
        gB.backward(gradFakeA, record: recordFakeA)
        optimizerG.step()

        // Discriminator step on detached fakes from the history pools.
        optimizerD.zeroGradients()
        let pooledFakeB = poolB.query(fakeB)
        let pooledFakeA = poolA.query(fakeA)
        losses.dA = discriminatorStep(dA, record: recordDA, real: realB, fake: pooledFakeB, name: "A")
        losses.dB = discriminatorStep(dB, record: recordDB, real: realA, fake: pooledFakeA, name: "B")
        optimizerD.step()

        visuals = ["realA": realA, "fakeB": fakeB, "recA": recA, "realB": realB, "fakeA": fakeA, "recB": recB]
        if let idtA, let idtB { visuals["idtA"] = idtA; visuals["idtB"] = idtB }
        return losses
    }

    /// (loss(D(real), real) + loss(D(fake), fake)) × 0.5, accumulating D's parameter gradients.
    private func discriminatorStep(_ d: NLayerDiscriminator, record: LayerRecord, real: Tensor, fake: Tensor,
                                   name: String) -> Float {
        let predictionReal = d.forward(real, record: record)
        let gradient = buffer("gradD" + name, like: predictionReal.shape)
        let lossReal = configuration.ganLoss(predictionReal, real: true, scale: 0.5, gradient: gradient)
        d.backward(gradient, record: record)
        let predictionFake = d.forward(fake, record: record)
        let lossFake = configuration.ganLoss(predictionFake, real: false, scale: 0.5, gradient: gradient)
        d.backward(gradient, record: record)
        return lossReal + lossFake
    }

    private func add(_ x: Tensor, into y: Tensor) {
        let a = x.data, b = y.data
        for i in 0..<b.count { b[i] += a[i] }
    }
}
