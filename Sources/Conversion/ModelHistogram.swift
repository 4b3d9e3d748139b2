import Foundation
import CycleGAN
import SyntheticCT
import NIfTI
import Preprocessing
import Safetensors

/// Adds a training-MR intensity histogram (`IntensityHistogram.metadataKey`) to a generator file saved without one
/// (models from before training stored it, or from PyTorch): the histogram of the normalised body intensities of
/// the given MR volumes under the model's own preprocessing, computed exactly as training computes it
/// (`IntensityHistogram(mr:configuration:)`). Tensors and all other metadata are copied unchanged.
public enum ModelHistogram {
    /// The summed histogram of `mrFiles` under `preprocessing`.
    public static func histogram(of mrFiles: [URL], preprocessing: PreprocessingConfiguration,
                                 readOptions: NIfTIReadOptions = .init()) throws -> IntensityHistogram {
        var total = IntensityHistogram(normalization: preprocessing.mrNormalization)
        for url in mrFiles {
            let volume = try NIfTIFile.read(url, options: readOptions)
            total.add(IntensityHistogram(mr: volume, configuration: preprocessing))
        }
        return total
    }

    /// Writes `model`'s generator file to `output` with `histogram` in its metadata (replacing one stored before).
    public static func store(_ histogram: IntensityHistogram, in model: URL, to output: URL) throws {
        let file = try SyntheticCTModel.generatorFile(for: model)
        let archive = try SafetensorsFile.read(file)
        let tensors = try archive.names.map { name in
            let t = try archive.tensor(named: name)
            return (name: name, shape: t.shape, values: t.values)
        }
        var metadata = archive.metadata
        metadata[IntensityHistogram.metadataKey] = histogram.json
        try SafetensorsFile.write(tensors, metadata: metadata, to: output)
    }
}
