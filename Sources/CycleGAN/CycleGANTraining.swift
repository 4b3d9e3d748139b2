import Foundation
import MR2CTSupport
import NeuralNetwork
import Safetensors
import Training

/// The loss terms of a CycleGAN step under the reference's names (pytorch-CycleGAN-and-pix2pix
/// `CycleGANModel.loss_names`: D_A, G_A, cycle_A, idt_A, D_B, G_B, cycle_B, idt_B; struct_A/B are MR2CT's MIND
/// structure terms), in the order the log writes them (direction A, then B); G_sup is the supervised term of
/// semi-supervised runs (`CycleGANSupervision`), logged only by them.
public enum CycleGANLossKey: String, TrainingKey {
    case dA = "D_A", gA = "G_A", cycleA = "cycle_A", idtA = "idt_A", structureA = "struct_A"
    case dB = "D_B", gB = "G_B", cycleB = "cycle_B", idtB = "idt_B", structureB = "struct_B"
    case supervised = "G_sup"

    /// The discriminators' terms (the report's second chart).
    public var isDiscriminatorLoss: Bool { self == .dA || self == .dB }
}

/// The images of a step (the reference's `visual_names`: real_A, fake_B, rec_A, real_B, fake_A, rec_B, and idt_A,
/// idt_B when the identity term is on; pairA, pairFakeB = G_A(pairA), pairB: the registered pair of a
/// semi-supervised step).
public enum CycleGANImageKey: String, TrainingKey {
    case realA, fakeB, recA, realB, fakeA, recB, idtA, idtB
    case pairA, pairFakeB, pairB
}

/// The four networks of a checkpoint set, by their file names' roles.
public enum CycleGANNetworkRole: String, CaseIterable, Sendable {
    case gA = "G_A", gB = "G_B", dA = "D_A", dB = "D_B"
}

/// One training batch: B images of domain A and B of domain B (unpaired), each B × C × H × W; in semi-supervised
/// training also one registered pair for the supervised term.
public struct CycleGANBatch {
    public var realA: Tensor
    public var realB: Tensor
    public var pair: CycleGANPair? = nil

    public init(realA: Tensor, realB: Tensor, pair: CycleGANPair? = nil) {
        self.realA = realA
        self.realB = realB
        self.pair = pair
    }
}

/// The CycleGAN family on the model-agnostic training loop: one `optimize_parameters` step → the typed losses;
/// the set's files G_A, G_B, D_A, D_B (state-dict names), optimizer_G and optimizer_D (Adam's moments as
/// `<role>.<parameter>.exp_avg(_sq)`, the step count), pools (the image pools with their generators).
extension CycleGANModel: TrainableModel {
    public func trainStep(_ batch: CycleGANBatch, learningRate: Float) -> StepLosses<CycleGANLossKey> {
        self.learningRate = learningRate
        return trainStep(realA: batch.realA, realB: batch.realB, pair: batch.pair).keyed
    }

    public var checkpointComponents: [CheckpointComponent] {
        checkpointComponents(networkMetadata: { ["role": $0.rawValue] })
    }

    /// optimizer_G (G_A, G_B) and optimizer_D (D_A, D_B).
    public var optimizers: [Adam] { [optimizerG, optimizerD] }

    /// The network.
    public func network(_ role: CycleGANNetworkRole) -> ParameterContainer {
        switch role {
        case .gA: gA
        case .gB: gB
        case .dA: dA
        case .dB: dB
        }
    }

    /// The set's files with the given metadata: `networkMetadata` for each network file, `metadata` in the
    /// optimiser and pool files; `checkNetwork` sees each network file's metadata after it loaded (e.g. to check
    /// its iteration against the set's state).
    public func checkpointComponents(networkMetadata: @escaping (CycleGANNetworkRole) -> [String: String],
                                     metadata: [String: String] = [:],
                                     checkNetwork: @escaping (CycleGANNetworkRole, URL, [String: String]) throws -> Void = { _, _, _ in })
        -> [CheckpointComponent] {
        var components = CycleGANNetworkRole.allCases.map { role in
            CheckpointComponent(file: "\(role.rawValue).safetensors", write: { url in
                try self.network(role).saveSafetensors(to: url, metadata: networkMetadata(role))
            }, read: { url in
                try checkNetwork(role, url, try self.network(role).loadSafetensors(from: url))
            })
        }
        func names(_ roles: [CycleGANNetworkRole]) -> [String] {
            roles.flatMap { role in network(role).parameters.map { "\(role.rawValue).\($0.name)" } }
        }
        components.append(.optimizer("optimizer_G.safetensors", optimizerG, parameterNames: names([.gA, .gB]), metadata: metadata))
        components.append(.optimizer("optimizer_D.safetensors", optimizerD, parameterNames: names([.dA, .dB]), metadata: metadata))
        components.append(CheckpointComponent(file: "pools.safetensors", write: { url in
            try self.writePools(to: url, metadata: metadata)
        }, read: { url in
            try self.readPools(from: url)
        }))
        return components
    }

    /// real A | fake B | rec A over real B | fake A | rec B, the centre channel of each, in the generators' range.
    public func sampleImages() -> [[SampleImage<CycleGANImageKey>]] {
        let visuals = lastVisuals
        func image(_ key: CycleGANImageKey) -> SampleImage<CycleGANImageKey>? {
            guard let plane = Self.centrePlane(visuals[key]) else { return nil }
            return SampleImage(key: key, label: key.rawValue, width: plane.width, height: plane.height, pixels: plane.values)
        }
        return [[.realA, .fakeB, .recA], [.realB, .fakeA, .recB]].map { $0.compactMap(image) }
    }

    /// The centre channel of the first image of a B × C × H × W batch (the slice itself when MR comes with context
    /// channels).
    public static func centrePlane(_ tensor: Tensor?) -> (width: Int, height: Int, values: [Float])? {
        guard let tensor, tensor.shape.count == 4 else { return nil }
        let channels = tensor.shape[1], height = tensor.shape[2], width = tensor.shape[3]
        let plane = height * width, centre = channels / 2
        return (width, height, Array(tensor.data[(centre * plane)..<((centre + 1) * plane)]))
    }

    // MARK: Image pools

    /// The pools' images (`pool_A.0`, …, each of the pool's image shape) with each pool's generator state in the
    /// metadata (`pool_A.count`, `pool_A.random`).
    func writePools(to url: URL, metadata: [String: String]) throws {
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        var metadata = metadata
        for (label, pool) in [("A", poolA), ("B", poolB)] {
            for (index, image) in pool.images.enumerated() {
                tensors.append(("pool_\(label).\(index)", pool.imageShape, image))
            }
            metadata["pool_\(label).count"] = String(pool.images.count)
            metadata["pool_\(label).random"] = pool.random.state.map(String.init).joined(separator: ",")
        }
        try SafetensorsFile.write(tensors, metadata: metadata, to: url)
    }

    func readPools(from url: URL) throws {
        let archive = try SafetensorsFile.read(url)
        var restored: [ImagePool] = []
        for (label, capacity) in [("A", poolA.capacity), ("B", poolB.capacity)] {
            guard let countText = archive.metadata["pool_\(label).count"], let count = Int(countText),
                  count >= 0, count <= max(capacity, 0) else {
                throw RunError.checkpoint(path: url.path, reason: "no valid image count for pool \(label) (capacity \(capacity))")
            }
            let words = archive.metadata["pool_\(label).random"]?.split(separator: ",").compactMap { UInt64($0) } ?? []
            guard words.count == 4 else {
                throw RunError.checkpoint(path: url.path, reason: "no valid generator state for pool \(label)")
            }
            var images: [[Float]] = []
            var shape: [Int] = []
            for index in 0..<count {
                let name = "pool_\(label).\(index)"
                guard archive.info(named: name) != nil else {
                    throw RunError.checkpoint(path: url.path, reason: "no tensor \"\(name)\"")
                }
                let tensor = try archive.tensor(named: name)
                guard index == 0 || tensor.shape == shape else {
                    throw RunError.checkpoint(path: url.path, reason: "tensor \"\(name)\" has shape \(tensor.shape), not \(shape)")
                }
                shape = tensor.shape
                images.append(tensor.values)
            }
            var random = SeededRandom(seed: 0)
            random.state = words
            restored.append(ImagePool(capacity: capacity, images: images, imageShape: shape, random: random))
        }
        poolA = restored[0]
        poolB = restored[1]
    }
}
