import Foundation
import NIfTI

extension UnpairedSliceLoader {
    /// A loader over NIfTI files (.nii, .nii.gz, …) read with `NIfTIFile.read`; see the type's documentation.
    /// Throws when the configuration is invalid or a folder has no usable volume.
    public convenience init(mrFiles: [URL], ctFiles: [URL], configuration: PreprocessingConfiguration, seed: UInt64,
                            augment: Bool = false, cacheDirectory: URL? = nil) throws {
        try self.init(mrFiles: mrFiles, ctFiles: ctFiles, configuration: configuration, seed: seed, augment: augment,
                      cacheDirectory: cacheDirectory, rampIterations: 2, reader: { try NIfTIFile.read($0) })
    }
}
