import CycleGAN
import Foundation
import MR2CTSupport
import NIfTI
import NeuralNetwork
import Preprocessing
import Safetensors
import Networks

/// A trained MR→CT generator on disk, with the preprocessing it was trained with.
///
/// A model is either a run folder of `mr2ct train` (its `checkpoints/best/G_A.safetensors` when validation chose
/// one, else `checkpoints/latest/G_A.safetensors`) or a single generator safetensors file whose `__metadata__`
/// holds "generator" (JSON of `GeneratorConfiguration`), "preprocessing" (JSON of `PreprocessingConfiguration`) and
/// "direction" ("MR->CT"), and, when training stored it, "mr_histogram" (JSON of `IntensityHistogram`: the
/// normalised intensities of the training MR inside the body, for conversion's `input_unlike_training` check).
/// A paired (pix2pix) model (`mr2ct train --paired`: `checkpoints/…/G.safetensors`) has the same entries plus
/// "architecture": "unet" when "generator" is a `UNetConfiguration` (absent or "resnet": a ResNet generator) and
/// "training": "paired". A semi-supervised CycleGAN generator (`train --paired-mr --paired-ct`) has "training":
/// "semi-supervised" (`TrainingCheckpoint.generatorMetadata`); an unpaired one no "training" entry. All convert alike.
public struct SyntheticCTModel {
    /// The MR→CT generator (ResNet, or U-Net for paired models with `--generator unet_*`).
    public let generator: any SliceTranslationNetwork
    public let preprocessing: PreprocessingConfiguration
    /// The histogram of the training MR's normalised body intensities; nil for models saved without it.
    public let trainingHistogram: IntensityHistogram?
    /// The generator file the weights came from.
    public let file: URL
    /// The file's safetensors metadata.
    public let metadata: [String: String]

    /// The generator file a model path names: the path itself, or the generator of a run folder.
    public static func generatorFile(for url: URL) throws -> URL {
        switch FileKind.of(url.path) {
        case .directory: break
        case .missing: throw ModelError(path: url.path, reason: "no such file or folder")
        case let kind:
            if let problem = kind.problemAsFile() { throw ModelError(path: url.path, reason: problem) }
            if NIfTIFile.isVolumeFile(url) {
                throw ModelError(path: url.path, reason: "is a NIfTI volume, not a model (--model takes a run folder "
                                 + "or a generator .safetensors file)")
            }
            return url
        }
        let candidates = ["checkpoints/best/G_A.safetensors", "checkpoints/latest/G_A.safetensors", "G_A.safetensors",
                          "checkpoints/best/G.safetensors", "checkpoints/latest/G.safetensors"]
        for candidate in candidates {
            let file = url.appendingPathComponent(candidate)
            if FileManager.default.fileExists(atPath: file.path) { return file }
        }
        throw ModelError(path: url.path, reason: "not a model: no checkpoints/latest/G_A.safetensors (a run folder) "
                         + "and not a generator .safetensors file")
    }

    /// Loads the model a run folder or generator file holds; strict about names, shapes and metadata.
    public static func load(_ url: URL) throws -> SyntheticCTModel {
        let file = try generatorFile(for: url)
        let archive: SafetensorsArchive
        do { archive = try SafetensorsFile.read(file) } catch { throw ModelError(path: file.path, reason: "\(reason(error))") }
        let metadata = archive.metadata
        if let direction = metadata["direction"], direction != "MR->CT" {
            throw ModelError(path: file.path, reason: "is the \(direction) generator; conversion needs the MR->CT one (G_A)")
        }
        func decode<T: Decodable>(_ key: String, as type: T.Type) throws -> T {
            guard let json = metadata[key] else {
                throw ModelError(path: file.path, reason: "metadata has no \"\(key)\" entry (not an mr2ct generator file)")
            }
            do { return try JSONDecoder().decode(T.self, from: Data(json.utf8)) } catch {
                throw ModelError(path: file.path, reason: "metadata \"\(key)\" is not a valid \(T.self): \(error)")
            }
        }
        // The generator's configuration is checked before the preprocessing, and both before any weight is allocated.
        let makeGenerator: () -> any SliceTranslationNetwork
        switch metadata["architecture"] ?? "resnet" {
        case "resnet":
            let configuration = try decode("generator", as: GeneratorConfiguration.self)
            let preprocessing = try decode("preprocessing", as: PreprocessingConfiguration.self)
            do { try preprocessing.validate() } catch { throw ModelError(path: file.path, reason: "\(reason(error))") }
            do { try configuration.validate() } catch { throw ModelError(path: file.path, reason: "metadata: \(error)") }
            makeGenerator = { ResnetGenerator(configuration) }
        case "unet":
            let configuration = try decode("generator", as: UNetConfiguration.self)
            let preprocessing = try decode("preprocessing", as: PreprocessingConfiguration.self)
            do { try preprocessing.validate() } catch { throw ModelError(path: file.path, reason: "\(reason(error))") }
            do { try configuration.validate() } catch { throw ModelError(path: file.path, reason: "metadata: \(error)") }
            makeGenerator = { UNetGenerator(configuration) }
        case let other:
            throw ModelError(path: file.path, reason: "metadata \"architecture\" is \"\(other)\", not resnet or unet")
        }
        let preprocessing = try decode("preprocessing", as: PreprocessingConfiguration.self)
        let generator = makeGenerator()
        guard generator.inputChannels == preprocessing.contextSlices, generator.outputChannels == 1 else {
            throw ModelError(path: file.path, reason: "the generator takes \(generator.inputChannels) input and "
                             + "\(generator.outputChannels) output channels; the preprocessing gives "
                             + "\(preprocessing.contextSlices)-slice input and conversion needs 1 output channel")
        }
        var histogram: IntensityHistogram?
        if let json = metadata[IntensityHistogram.metadataKey] {
            guard let decoded = IntensityHistogram(json: json),
                  decoded.isComparable(with: IntensityHistogram(normalization: preprocessing.mrNormalization)) else {
                throw ModelError(path: file.path, reason: "metadata \"\(IntensityHistogram.metadataKey)\" is not a valid "
                                 + "histogram for the model's MR normalisation")
            }
            histogram = decoded
        }
        do { try generator.load(from: archive, prefix: "", requireAllTensorsUsed: true) } catch { throw ModelError(path: file.path, reason: "\(reason(error))") }
        return SyntheticCTModel(generator: generator, preprocessing: preprocessing, trainingHistogram: histogram,
                                file: file, metadata: metadata)
    }

    /// The reason of an error whose description may already start with the file name.
    private static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        if let range = text.range(of: ": "), text[..<range.lowerBound].contains("/") {
            return String(text[range.upperBound...])
        }
        return text
    }

    /// A translator running this model.
    public var translator: VolumeTranslator { VolumeTranslator(generator: generator, preprocessing: preprocessing) }
}

/// A model that could not be loaded: `"<path>: <reason>"`.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }
}
