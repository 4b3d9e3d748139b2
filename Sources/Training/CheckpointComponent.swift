import Foundation
import MR2CTSupport
import NeuralNetwork
import Safetensors

/// One file of a checkpoint set: how the model writes it into a set folder and reads it back.
public struct CheckpointComponent {
    public var file: String
    public var write: (URL) throws -> Void
    public var read: (URL) throws -> Void

    public init(file: String, write: @escaping (URL) throws -> Void, read: @escaping (URL) throws -> Void) {
        self.file = file
        self.write = write
        self.read = read
    }

    /// A network's parameters and buffers with PyTorch names (loads strictly), `metadata` as `__metadata__`.
    public static func network(_ file: String, _ network: ParameterContainer, metadata: @escaping () -> [String: String]) -> CheckpointComponent {
        CheckpointComponent(file: file, write: { url in
            try network.saveSafetensors(to: url, metadata: metadata())
        }, read: { url in
            try network.loadSafetensors(from: url)
        })
    }

    /// Adam's moments (`<parameter>.exp_avg`, `.exp_avg_sq`, PyTorch's state names) and step count (metadata "step").
    public static func optimizer(_ file: String, _ adam: Adam) -> CheckpointComponent {
        optimizer(file, adam, parameterNames: adam.parameters.map(\.name))
    }

    /// Adam's moments under `parameterNames` (one per parameter, in the optimiser's order: e.g. `G_A.<name>` and
    /// `G_B.<name>` when one optimiser updates two networks, as CycleGAN's do), with `metadata` besides "step".
    public static func optimizer(_ file: String, _ adam: Adam, parameterNames: [String],
                                 metadata: [String: String] = [:]) -> CheckpointComponent {
        CheckpointComponent(file: file, write: { url in
            guard parameterNames.count == adam.moments.count else {
                throw RunError.checkpoint(path: url.path, reason: "optimiser holds \(adam.moments.count) parameters, the networks \(parameterNames.count)")
            }
            var tensors: [(name: String, shape: [Int], values: [Float])] = []
            tensors.reserveCapacity(2 * parameterNames.count)
            for (name, m) in zip(parameterNames, adam.moments) {
                tensors.append((name + ".exp_avg", m.first.shape, m.first.toArray()))
                tensors.append((name + ".exp_avg_sq", m.second.shape, m.second.toArray()))
            }
            try SafetensorsFile.write(tensors, metadata: metadata.merging(["step": String(adam.stepCount)]) { _, step in step }, to: url)
        }, read: { url in
            let archive = try SafetensorsFile.read(url)
            guard archive.tensors.count == 2 * adam.parameters.count else {
                throw RunError.checkpoint(path: url.path, reason: "holds \(archive.tensors.count) tensors, the optimiser needs \(2 * adam.parameters.count)")
            }
            guard let stepText = archive.metadata["step"], let step = Int(stepText), step >= 0 else {
                throw RunError.checkpoint(path: url.path, reason: "no valid \"step\" in the metadata")
            }
            var staged: [(Tensor, [Float])] = []
            for (name, m) in zip(parameterNames, adam.moments) {
                for (suffix, tensor) in [(".exp_avg", m.first), (".exp_avg_sq", m.second)] {
                    guard let info = archive.info(named: name + suffix), info.shape == tensor.shape else {
                        throw RunError.checkpoint(path: url.path, reason: "no tensor \"\(name + suffix)\" of shape \(tensor.shape)")
                    }
                    staged.append((tensor, try archive.tensor(named: name + suffix).values))
                }
            }
            for (tensor, values) in staged { tensor.assign(from: Tensor(shape: tensor.shape, values: values)) }
            adam.stepCount = step
        })
    }

    /// A Codable value as pretty JSON.
    public static func json<T: Codable>(_ file: String, get: @escaping () -> T, set: @escaping (T) -> Void) -> CheckpointComponent {
        CheckpointComponent(file: file, write: { url in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try AtomicFile.write(try encoder.encode(get()), to: url)
        }, read: { url in
            do { set(try JSONDecoder().decode(T.self, from: try Data(contentsOf: url))) } catch {
                throw RunError.checkpoint(path: url.path, reason: "not a valid \(file) (\(error))")
            }
        })
    }
}
