import NeuralNetwork

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

    public init(dA: Float = 0, gA: Float = 0, cycleA: Float = 0, idtA: Float = 0, structureA: Float = 0,
                dB: Float = 0, gB: Float = 0, cycleB: Float = 0, idtB: Float = 0, structureB: Float = 0) {
        self.dA = dA; self.gA = gA; self.cycleA = cycleA; self.idtA = idtA; self.structureA = structureA
        self.dB = dB; self.gB = gB; self.cycleB = cycleB; self.idtB = idtB; self.structureB = structureB
    }

    /// The generator objective: gA + gB + cycleA + cycleB + idtA + idtB + structureA + structureB.
    public var generatorTotal: Float { gA + gB + cycleA + cycleB + idtA + idtB + structureA + structureB }

    /// The terms under their names in `log.ndjson` and the report, in log order (direction A, then B).
    public var named: [(name: String, value: Float)] {
        [("D_A", dA), ("G_A", gA), ("cycle_A", cycleA), ("idt_A", idtA), ("struct_A", structureA),
         ("D_B", dB), ("G_B", gB), ("cycle_B", cycleB), ("idt_B", idtB), ("struct_B", structureB)]
    }

    /// The log names of the terms, in log order.
    public static let names = CycleGANLosses().named.map(\.name)
}
