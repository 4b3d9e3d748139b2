import Foundation
import NeuralNetwork
import Safetensors

/// A generator file (`checkpoints/latest/G.safetensors`, or one converted from PyTorch by
/// Pipelines/convert_pytorch_generator.py --family dcgan): the generator's state_dict (parameters and BatchNorm
/// buffers, PyTorch names) and `__metadata__` "gan", the `GANConfiguration` JSON.
public enum GANModelFile {
    public static let format = "mr2ct-gan-1"

    /// A model file that cannot be used, one line.
    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
        public init(path: String, reason: String) { self.path = path; self.reason = reason }
    }

    /// The generator file `path` names: itself, or for a run folder of `mr2ct gan train` its
    /// `checkpoints/latest/G.safetensors`.
    public static func generatorFile(_ path: String) -> URL {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else { return url }
        return url.appendingPathComponent("checkpoints/latest/G.safetensors")
    }

    /// Reads the configuration and loads the weights (strictly) into a new generator.
    public static func load(_ url: URL) throws -> (configuration: GANConfiguration, generator: ConditionedNetwork) {
        let archive = try SafetensorsFile.read(url)
        guard let json = archive.metadata["gan"] else {
            throw LoadError(path: url.path, reason: "no \"gan\" configuration in the metadata: not an mr2ct GAN generator")
        }
        let configuration: GANConfiguration
        do { configuration = try JSONDecoder().decode(GANConfiguration.self, from: Data(json.utf8)) } catch {
            throw LoadError(path: url.path, reason: "the \"gan\" metadata is not a valid configuration (\(error))")
        }
        do { try configuration.validate() } catch {
            throw LoadError(path: url.path, reason: "\(error)")
        }
        let generator = configuration.makeGenerator()
        try generator.load(from: archive)
        return (configuration, generator)
    }
}
