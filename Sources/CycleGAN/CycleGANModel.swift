import NeuralNetwork
import MR2CTSupport
import Networks

/// Options of the CycleGAN model pair and its optimisation (defaults of pytorch-CycleGAN-and-pix2pix).
public struct CycleGANConfiguration: Codable, Sendable, Hashable {
    public var generator = GeneratorConfiguration()
    public var discriminator = DiscriminatorConfiguration()
    public var ganLoss: GANLoss = .lsgan
    public var lambdaA: Float = 10
    public var lambdaB: Float = 10
    public var lambdaIdentity: Float = 0.5
    /// Weight of the MIND structure-consistency terms |MIND(G_A(A)) − MIND(A)| and |MIND(G_B(B)) − MIND(B)|
    /// (Yang et al. 2018; not in the reference, whose default this 0 keeps).
    public var lambdaStructure: Float = 0
    public var poolSize = 50
    public var learningRate: Float = 2e-4
    public var beta1: Float = 0.5
    /// Semi-supervised training: the weight of a supervised L1 term on registered (A, B) pairs; nil = unpaired
    /// training (the reference), and the key is absent from the JSON.
    public var supervised: CycleGANSupervision? = nil
    /// How the B → A → B cycle trains the generators; nil = `.cycle`, the reference (and the key is absent from
    /// the JSON).
    public var backwardCycle: BackwardCycle? = nil

    public init(generator: GeneratorConfiguration = .init(), discriminator: DiscriminatorConfiguration = .init(),
                ganLoss: GANLoss = .lsgan, lambdaA: Float = 10, lambdaB: Float = 10, lambdaIdentity: Float = 0.5,
                lambdaStructure: Float = 0, poolSize: Int = 50, learningRate: Float = 2e-4, beta1: Float = 0.5) {
        self.generator = generator
        self.discriminator = discriminator
        self.ganLoss = ganLoss
        self.lambdaA = lambdaA
        self.lambdaB = lambdaB
        self.lambdaIdentity = lambdaIdentity
        self.lambdaStructure = lambdaStructure
        self.poolSize = poolSize
        self.learningRate = learningRate
        self.beta1 = beta1
    }

    private enum CodingKeys: String, CodingKey {
        case generator, discriminator, ganLoss, lambdaA, lambdaB, lambdaIdentity, lambdaStructure, poolSize, learningRate, beta1
        case supervised, backwardCycle
    }

    /// Decodes configurations written before `lambdaStructure` existed as having none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        generator = try c.decode(GeneratorConfiguration.self, forKey: .generator)
        discriminator = try c.decode(DiscriminatorConfiguration.self, forKey: .discriminator)
        ganLoss = try c.decode(GANLoss.self, forKey: .ganLoss)
        lambdaA = try c.decode(Float.self, forKey: .lambdaA)
        lambdaB = try c.decode(Float.self, forKey: .lambdaB)
        lambdaIdentity = try c.decode(Float.self, forKey: .lambdaIdentity)
        lambdaStructure = try c.decodeIfPresent(Float.self, forKey: .lambdaStructure) ?? 0
        poolSize = try c.decode(Int.self, forKey: .poolSize)
        learningRate = try c.decode(Float.self, forKey: .learningRate)
        beta1 = try c.decode(Float.self, forKey: .beta1)
        supervised = try c.decodeIfPresent(CycleGANSupervision.self, forKey: .supervised)
        backwardCycle = try c.decodeIfPresent(BackwardCycle.self, forKey: .backwardCycle)
    }
}

/// What the B → A → B cycle term |G_A(G_B(B)) − B| trains.
public enum BackwardCycle: String, Codable, Sendable, Hashable, CaseIterable {
    /// Both generators (Zhu et al. 2017): its gradient flows through G_A into G_B's fake, so G_B may learn to hide
    /// in G_B(B) what G_A needs to rebuild B (Chu et al. 2017, "CycleGAN, a master of steganography").
    case cycle
    /// G_A only, G_B(B) taken as a fixed input: back-translation (Sennrich et al. 2016; Lample et al. 2018). The
    /// term is then an L1 regression of G_A on synthetic pairs (G_B(B), B), which targets the conditional median of
    /// B given an image that looks like A, and G_B is trained only by its adversarial, identity and A → B → A
    /// terms.
    case backTranslation = "back-translation"
}

/// The supervised term of semi-supervised CycleGAN training: λ_sup · mean |G_A(A_p) − B_p| on one registered pair
/// (A_p, B_p) per iteration, over the pair's body mask with `inBody`, added to the generators' objective (its
/// gradient reaches G_A only). Unpaired CycleGAN (Zhu et al. 2017) has no such term; it is pix2pix's L1 term
/// (Isola et al. 2017) on the pairs one has.
public struct CycleGANSupervision: Codable, Sendable, Hashable {
    /// λ_sup; 0 keeps the step exactly the unpaired one.
    public var lambda: Float
    /// The L1 term only where the pair's mask (the MR's body mask) is 1.
    public var inBody: Bool

    /// The default weight, pix2pix's λ_L1 (README "Semi-supervised training" argues it).
    public static let defaultLambda: Float = 100

    public init(lambda: Float = CycleGANSupervision.defaultLambda, inBody: Bool = false) {
        self.lambda = lambda
        self.inBody = inBody
    }
}

/// A registered pair for the supervised term: an image of domain A (1 × C_A × H × W), its registered image of
/// domain B (1 × C_B × H × W) and a mask on the H × W plane (1 inside; nil: everywhere).
public struct CycleGANPair {
    public var realA: Tensor
    public var realB: Tensor
    public var mask: [Float]?

    public init(realA: Tensor, realB: Tensor, mask: [Float]? = nil) {
        self.realA = realA
        self.realB = realB
        self.mask = mask
    }
}

/// Unpaired image-to-image translation with cycle consistency (Zhu et al. 2017): generators G_A: A → B and
/// G_B: B → A, discriminators D_A (judges domain B) and D_B (judges domain A), trained as
/// pytorch-CycleGAN-and-pix2pix `CycleGANModel.optimize_parameters` does (whose name this class takes). In MR2CT, A is
/// MR and B is CT. On the model-agnostic training loop through `TrainableModel` (CycleGANTraining.swift).
public final class CycleGANModel: @unchecked Sendable {
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

    // One record per generator application alive at once; reused every iteration. The identity terms run (forward
    // and backward) before the translations, in the records the reconstructions then reuse: four generator
    // records held instead of six, with the same gradient sums in the same order.
    private let recordFakeB = LayerRecord(), recordRecB = LayerRecord()
    private let recordFakeA = LayerRecord(), recordRecA = LayerRecord()
    private let recordDA = LayerRecord(), recordDB = LayerRecord()
    private let structureA = StructureLoss(), structureB = StructureLoss()
    private let recordSupervised = LayerRecord()
    /// Every generator record and every discriminator record (the memory profile's parts, what a release frees).
    private var generatorRecordList: [LayerRecord] { [recordFakeB, recordRecB, recordFakeA, recordRecA, recordSupervised] }
    private var discriminatorRecordList: [LayerRecord] { [recordDA, recordDB] }

    /// The four networks: G_A, G_B, D_A, D_B.
    public var networks: [SequentialNetwork] { [gA, gB, dA, dB] }
    /// The step's scratch tensors, reused every iteration.
    private enum Buffer: Hashable {
        case gradFakeB, gradFakeA, gradCycleToFakeB, gradCycleToFakeA, gradRecA, gradRecB, gradIdtA, gradIdtB
        case gradPredictionA, gradPredictionB, mindRealA, mindRealB
        case gradSupervised, idtA, idtB
    }
    private var buffers: [Buffer: Tensor] = [:]
    private var visuals: [CycleGANImageKey: Tensor] = [:]

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
    public var lastVisuals: [CycleGANImageKey: Tensor] { visuals.mapValues { $0.copy() } }

    private func buffer(_ name: Buffer, like shape: [Int]) -> Tensor {
        if let t = buffers[name], t.shape == shape { return t }
        let t = Tensor(shape: shape)
        buffers[name] = t
        return t
    }

    /// One full iteration as pytorch-CycleGAN-and-pix2pix `optimize_parameters` (REFERENCE.md §2):
    /// forward fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A); generator step with
    /// D frozen (identity G_A(B), G_B(A); adversarial terms through D; cycle L1 × λ; identity × λ·λ_idt); then
    /// the discriminator step on real images and on pooled fakes (each D loss × 0.5); Adam on both.
    /// `realA`, `realB`: B × C × H × W (a batch of B unpaired images each; B = 1 is the reference's default):
    /// instance normalisation normalises each image by its own statistics, every loss is the mean over the batch,
    /// and the pools decide per image (`ImagePool.query`). With `pair` (semi-supervised training,
    /// `configuration.supervised`), the generator step adds the supervised term on it (`supervisedTerm`) before G's
    /// Adam step begins (so that data-parallel training averages its gradient with the others).
    /// The generators' Adam step is begun before the discriminators' pass and finished after it: the pass reads
    /// only the fakes, so under data-parallel training G's gradients are averaged over the ranks meanwhile
    /// (`Adam.beginStep`); on one process the update is the same, only later.
    ///
    /// The work is split into two chains that run at once, one per core: everything G_A and D_A do, and
    /// everything G_B and D_B do, meeting only where the cycle gradients cross over (`ComputeThreads.pair`).
    public func trainStep(realA: Tensor, realB: Tensor, pair: CycleGANPair? = nil) -> CycleGANLosses {
        let c = configuration
        let shapeB = gA.network.outputShape(for: realA.shape), shapeA = gB.network.outputShape(for: realB.shape)
        let gradFakeB = buffer(.gradFakeB, like: shapeB), gradFakeA = buffer(.gradFakeA, like: shapeA)
        let gradCycleToFakeB = buffer(.gradCycleToFakeB, like: shapeB), gradCycleToFakeA = buffer(.gradCycleToFakeA, like: shapeA)
        let gradRecA = buffer(.gradRecA, like: realA.shape), gradRecB = buffer(.gradRecB, like: realB.shape)
        let gradIdtA = buffer(.gradIdtA, like: realB.shape), gradIdtB = buffer(.gradIdtB, like: realA.shape)
        let predictionShapeA = dA.network.outputShape(for: shapeB), predictionShapeB = dB.network.outputShape(for: shapeA)
        let gradPredictionA = buffer(.gradPredictionA, like: predictionShapeA)
        let gradPredictionB = buffer(.gradPredictionB, like: predictionShapeB)
        let lambdaIdtA = c.lambdaB * c.lambdaIdentity, lambdaIdtB = c.lambdaA * c.lambdaIdentity
        let useIdentity = c.lambdaIdentity > 0, useStructure = c.lambdaStructure > 0

        // Generator step, discriminators frozen. First the identity terms (idt_A = G_A(B) ~ B, idt_B = G_B(A) ~ A),
        // forward and backward, one generator per core, in the records rec_B and rec_A take next; their images are
        // kept as copies for the visuals. Each generator's gradient sums in the reference's order: identity, cycle,
        // then adversarial (only the forward passes move, and a forward pass reads no gradient).
        optimizerG.zeroGradients()
        func identity(_ g: ResnetGenerator, of real: Tensor, record: LayerRecord, scale: Float, gradient: Tensor,
                      image: Tensor?) -> (idt: Tensor?, loss: Float) {
            guard let image else { return (nil, 0) }
            let t = g.forward(real, record: record)
            let loss = Loss.l1(t, target: real, scale: scale, gradient: gradient)
            g.backward(gradient, record: record)
            image.assign(from: t)
            return (image, loss)
        }
        let imageIdtA = useIdentity ? buffer(.idtA, like: gA.network.outputShape(for: realB.shape)) : nil
        let imageIdtB = useIdentity ? buffer(.idtB, like: gB.network.outputShape(for: realA.shape)) : nil
        let (identityA, identityB) = ComputeThreads.pair({
            identity(self.gA, of: realB, record: self.recordRecB, scale: lambdaIdtA, gradient: gradIdtA, image: imageIdtA)
        }, {
            identity(self.gB, of: realA, record: self.recordRecA, scale: lambdaIdtB, gradient: gradIdtB, image: imageIdtB)
        })

        // forward(): fake_B = G_A(A), fake_A = G_B(B); then rec_A = G_B(fake_B), rec_B = G_A(fake_A).
        let (fakeB, fakeA) = ComputeThreads.pair({ self.gA.forward(realA, record: self.recordFakeB) },
                                  { self.gB.forward(realB, record: self.recordFakeA) })
        let (recB, recA) = ComputeThreads.pair({ self.gA.forward(fakeA, record: self.recordRecB) },
                                { self.gB.forward(fakeB, record: self.recordRecA) })

        // One chain per generator: the cycle term of its second application (rec_B = G_A(fake_A) ~ B,
        // rec_A = G_B(fake_B) ~ A), whose gradient flows into the other generator's fake.
        func cycle(_ g: ResnetGenerator, reconstruction: Tensor, of real: Tensor, scale: Float, gradient: Tensor,
                   record: LayerRecord, gradientToFake: Tensor?) -> Float {
            let loss = Loss.l1(reconstruction, target: real, scale: scale, gradient: gradient)
            g.backward(gradient, record: record, gradInput: gradientToFake)
            return loss
        }
        // Back-translation: rec_B's gradient stops at G_A's input (fake_A is a fixed input to G_A there).
        let cycleToFakeA = c.backwardCycle == .backTranslation ? nil : gradCycleToFakeA
        let (cycleB, cycleA) = ComputeThreads.pair({
            cycle(self.gA, reconstruction: recB, of: realB, scale: c.lambdaB, gradient: gradRecB, record: self.recordRecB,
                  gradientToFake: cycleToFakeA)
        }, {
            cycle(self.gB, reconstruction: recA, of: realA, scale: c.lambdaA, gradient: gradRecA, record: self.recordRecA,
                  gradientToFake: gradCycleToFakeB)
        })
        // Adversarial terms through the frozen discriminators (D_A(G_A(A)), D_B(G_B(B)) should look real), then
        // the first applications: G_A(A) and G_B(B) take the sum of their adversarial and cycle gradients.
        // Structure terms (when λ_structure > 0): each fake's MIND descriptor should match its source's, compared
        // on the centre channel when MR slices come with context channels.
        func adversarial(_ d: NLayerDiscriminator, judging fake: Tensor, record: LayerRecord, predictionGradient: Tensor,
                         fakeGradient: Tensor, cycleGradient: Tensor?, generator g: ResnetGenerator,
                         generatorRecord: LayerRecord, structure: StructureLoss, source: Tensor,
                         sourceDescriptor: Tensor?) -> (adversarial: Float, structure: Float) {
            let prediction = d.forward(fake, record: record)
            let loss = c.ganLoss(prediction, real: true, gradient: predictionGradient)
            d.backward(predictionGradient, record: record, gradInput: fakeGradient, parameterGradients: false)
            if let cycleGradient { Self.add(cycleGradient, into: fakeGradient) }
            var structureLoss: Float = 0
            if let target = sourceDescriptor {
                structure.descriptor(of: source, channel: source.shape[1] / 2, into: target)
                structureLoss = structure.loss(fake, channel: fake.shape[1] / 2, target: target, scale: c.lambdaStructure,
                                               gradient: fakeGradient, accumulate: true)
            }
            g.backward(fakeGradient, record: generatorRecord)
            return (loss, structureLoss)
        }
        let mindRealA = useStructure ? buffer(.mindRealA, like: structureA.descriptorShape(for: realA.shape)) : nil
        let mindRealB = useStructure ? buffer(.mindRealB, like: structureB.descriptorShape(for: realB.shape)) : nil
        let (adversarialA, adversarialB) = ComputeThreads.pair({
            adversarial(self.dA, judging: fakeB, record: self.recordDA, predictionGradient: gradPredictionA,
                        fakeGradient: gradFakeB, cycleGradient: gradCycleToFakeB, generator: self.gA,
                        generatorRecord: self.recordFakeB, structure: self.structureA, source: realA,
                        sourceDescriptor: mindRealA)
        }, {
            adversarial(self.dB, judging: fakeA, record: self.recordDB, predictionGradient: gradPredictionB,
                        fakeGradient: gradFakeA, cycleGradient: cycleToFakeA, generator: self.gB,
                        generatorRecord: self.recordFakeA, structure: self.structureB, source: realB,
                        sourceDescriptor: mindRealB)
        })
        let supervised = pair.map { supervisedTerm($0) }
        let stepG = optimizerG.beginStep()

        // Discriminator step on detached fakes from the history pools.
        optimizerD.zeroGradients()
        let pooledFakeB = poolB.query(fakeB)
        let pooledFakeA = poolA.query(fakeA)
        let (lossDA, lossDB) = ComputeThreads.pair({ self.discriminatorStep(self.dA, record: self.recordDA, real: realB, fake: pooledFakeB, gradient: gradPredictionA) },
                                    { self.discriminatorStep(self.dB, record: self.recordDB, real: realA, fake: pooledFakeA, gradient: gradPredictionB) })
        stepG.finish()
        optimizerD.step()

        visuals = [.realA: realA, .fakeB: fakeB, .recA: recA, .realB: realB, .fakeA: fakeA, .recB: recB]
        if let idtA = identityA.idt, let idtB = identityB.idt { visuals[.idtA] = idtA; visuals[.idtB] = idtB }
        if let pair, let fake = supervised??.fake {
            visuals[.pairA] = pair.realA; visuals[.pairFakeB] = fake; visuals[.pairB] = pair.realB
        }
        var losses = CycleGANLosses(dA: lossDA, gA: adversarialA.adversarial, cycleA: cycleA, idtA: identityA.loss,
                              structureA: adversarialA.structure, dB: lossDB, gB: adversarialB.adversarial,
                              cycleB: cycleB, idtB: identityB.loss, structureB: adversarialB.structure)
        losses.supervised = supervised.map { $0?.loss ?? 0 }
        return losses
    }

    /// Bytes held by this model between steps, by part (the memory profile `mr2ct bench` prints): the records of
    /// the generator applications alive at once (four, and the supervised term's) and of the discriminators (what
    /// the backward passes need: outputs and saved intermediates), the networks' workspaces (column buffers,
    /// gradient ping-pong buffers, transformed kernels, oneDNN's primitives with their reordered weights),
    /// parameters with their gradients, Adam's moments, the step's gradient buffers and the image pools. Each
    /// storage is counted once.
    public var memoryProfile: [CycleGANMemoryPart: Int] {
        func count(_ fill: (inout TensorStorageBytes) -> Void) -> Int {
            var c = TensorStorageBytes()
            fill(&c)
            return c.bytes
        }
        let generatorRecords = count { c in for r in generatorRecordList { c.add(r) } }
        let discriminatorRecords = count { c in for r in discriminatorRecordList { c.add(r) } }
        let workspaces = networks.reduce(0) { $0 + $1.workspace.byteCount }
        let parameters = count { c in for n in networks { c.add(n.parameters) } }
        let moments = count { c in
            for o in [optimizerG, optimizerD] { for m in o.moments { c.add(m.first); c.add(m.second) } }
        }
        let stepBuffers = count { c in for t in buffers.values { c.add(t) } }
        let pools = [poolA, poolB].reduce(0) { $0 + $1.images.reduce(0) { $0 + $1.count * MemoryLayout<Float>.stride } }
        return [.generatorRecords: generatorRecords, .discriminatorRecords: discriminatorRecords,
                .workspaces: workspaces, .parametersAndGradients: parameters, .adamMoments: moments,
                .stepBuffers: stepBuffers, .imagePools: pools]
    }

    /// Frees what a step keeps for the next one: the records of the generator and discriminator applications and
    /// the four networks' training workspaces (at 256², ngf 64: about 1.1 GB); the next step allocates them again
    /// and computes the same bits. The training loop calls it before validating; `mr2ct bench` before timing
    /// inference.
    public func releaseStepBuffers() {
        for r in generatorRecordList + discriminatorRecordList { r.releaseBuffers() }
        for network in networks { network.releaseTrainingBuffers() }
    }

    /// The supervised term of semi-supervised training (`CycleGANSupervision`, part of the generator step):
    /// λ_sup · mean |G_A(A_p) − B_p| over the pair's mask with `inBody` (else over all pixels), through its own
    /// application of G_A, whose backward pass adds the term's gradient into G_A's parameter gradients (G_B and the
    /// discriminators get none). Call between `optimizerG.zeroGradients()` and `optimizerG.step()`. nil when λ_sup
    /// is 0 or the configuration has no supervision: then nothing runs and the step is exactly the unpaired one.
    func supervisedTerm(_ pair: CycleGANPair) -> (loss: Float, fake: Tensor)? {
        guard let supervision = configuration.supervised, supervision.lambda > 0 else { return nil }
        let fake = gA.forward(pair.realA, record: recordSupervised)
        let gradient = buffer(.gradSupervised, like: fake.shape)
        gradient.fill(0)
        let loss = Loss.l1(fake, target: pair.realB, mask: supervision.inBody ? pair.mask : nil, scale: supervision.lambda,
                           accumulatingInto: gradient)
        gA.backward(gradient, record: recordSupervised)
        return (loss, fake)
    }

    /// (loss(D(real), real) + loss(D(fake), fake)) × 0.5, accumulating D's parameter gradients.
    private func discriminatorStep(_ d: NLayerDiscriminator, record: LayerRecord, real: Tensor, fake: Tensor,
                                   gradient: Tensor) -> Float {
        let predictionReal = d.forward(real, record: record)
        let lossReal = configuration.ganLoss(predictionReal, real: true, scale: 0.5, gradient: gradient)
        d.backward(gradient, record: record)
        let predictionFake = d.forward(fake, record: record)
        let lossFake = configuration.ganLoss(predictionFake, real: false, scale: 0.5, gradient: gradient)
        d.backward(gradient, record: record)
        return lossReal + lossFake
    }

    private static func add(_ x: Tensor, into y: Tensor) {
        let a = x.data, b = y.data
        for i in 0..<b.count { b[i] += a[i] }
    }
}

/// The parts of `CycleGANModel.memoryProfile`; the raw values are the keys of `mr2ct bench`'s `memory_mb`.
public enum CycleGANMemoryPart: String, CaseIterable, Sendable {
    case generatorRecords = "generator_records"
    case discriminatorRecords = "discriminator_records"
    case workspaces
    case parametersAndGradients = "parameters_and_gradients"
    case adamMoments = "adam_moments"
    case stepBuffers = "step_buffers"
    case imagePools = "image_pools"
}
