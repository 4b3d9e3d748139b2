import NeuralNetwork
import Training

/// The adversarial objective: least squares (LSGAN, Mao et al. 2017 — the CycleGAN default) or the original
/// cross-entropy GAN ("vanilla", BCE with logits).
public enum GANLoss: String, Codable, Sendable {
    case lsgan
    case vanilla

    /// The loss of `prediction` against the constant label (1 real, 0 fake), scaled by `scale`; writes
    /// scale × dLoss/dPrediction into `gradient` when given.
    public func callAsFunction(_ prediction: Tensor, real: Bool, scale: Float = 1, gradient: Tensor? = nil) -> Float {
        let target: Float = real ? 1 : 0
        switch self {
        case .lsgan: return Loss.meanSquaredError(prediction, target: target, scale: scale, gradient: gradient)
        case .vanilla: return Loss.binaryCrossEntropyWithLogits(prediction, target: target, scale: scale, gradient: gradient)
        }
    }
}

/// The losses of one training iteration, weighted as they enter the objectives (pytorch-CycleGAN-and-pix2pix's
/// `loss_D_A`, `loss_G_A`, `loss_cycle_A`, `loss_idt_A`, … as `get_current_losses` reports them).
public struct CycleGANLosses: Codable, Sendable, Hashable {
    public var dA: Float
    public var gA: Float
    public var cycleA: Float
    public var idtA: Float
    /// λ_structure × mean |MIND(G_A(A)) − MIND(A)| (0 unless the structure term is on).
    public var structureA: Float
    public var dB: Float
    public var gB: Float
    public var cycleB: Float
    public var idtB: Float
    /// λ_structure × mean |MIND(G_B(B)) − MIND(B)|.
    public var structureB: Float
    /// λ_sup × mean |G_A(A_p) − B_p| on the iteration's registered pair (`G_sup`); nil in unpaired training, where
    /// the log has no such column.
    public var supervised: Float? = nil

    public init(dA: Float = 0, gA: Float = 0, cycleA: Float = 0, idtA: Float = 0, structureA: Float = 0,
                dB: Float = 0, gB: Float = 0, cycleB: Float = 0, idtB: Float = 0, structureB: Float = 0) {
        self.dA = dA; self.gA = gA; self.cycleA = cycleA; self.idtA = idtA; self.structureA = structureA
        self.dB = dB; self.gB = gB; self.cycleB = cycleB; self.idtB = idtB; self.structureB = structureB
    }

    /// The generator objective: gA + gB + cycleA + cycleB + idtA + idtB + structureA + structureB (+ supervised).
    public var generatorTotal: Float { gA + gB + cycleA + cycleB + idtA + idtB + structureA + structureB + (supervised ?? 0) }

    /// The value of one term.
    public subscript(_ key: CycleGANLossKey) -> Float {
        switch key {
        case .dA: dA
        case .gA: gA
        case .cycleA: cycleA
        case .idtA: idtA
        case .structureA: structureA
        case .dB: dB
        case .gB: gB
        case .cycleB: cycleB
        case .idtB: idtB
        case .structureB: structureB
        case .supervised: supervised ?? 0
        }
    }

    /// The terms under their typed keys (the training loop's form); `G_sup` only when the step had a pair.
    public var keyed: StepLosses<CycleGANLossKey> {
        StepLosses(Dictionary(uniqueKeysWithValues: CycleGANLossKey.allCases.filter { $0 != .supervised || supervised != nil }
            .map { ($0, self[$0]) }))
    }

    /// The terms of a step as the training loop reports them (name, value); names that are no term are ignored.
    public init(named values: [(name: String, value: Float)]) {
        let byKey = Dictionary(values.compactMap { pair in CycleGANLossKey(rawValue: pair.name).map { ($0, pair.value) } },
                               uniquingKeysWith: { first, _ in first })
        self.init(dA: byKey[.dA] ?? 0, gA: byKey[.gA] ?? 0, cycleA: byKey[.cycleA] ?? 0, idtA: byKey[.idtA] ?? 0,
                  structureA: byKey[.structureA] ?? 0, dB: byKey[.dB] ?? 0, gB: byKey[.gB] ?? 0, cycleB: byKey[.cycleB] ?? 0,
                  idtB: byKey[.idtB] ?? 0, structureB: byKey[.structureB] ?? 0)
        supervised = byKey[.supervised]
    }

    /// The terms under their names in `log.ndjson` and the report, in log order (direction A, then B).
    public var named: [(name: String, value: Float)] { keyed.named }

    /// The log names of the ten terms every CycleGAN step has, in log order (`G_sup`, semi-supervised runs' own
    /// term, follows them in their log).
    public static let names = CycleGANLossKey.allCases.filter { $0 != .supervised }.map(\.rawValue)
}
