import CycleGAN
import Foundation
import NIfTI
import Preprocessing
import VolumeIO

/// Named starting points for `mr2ct train --preset NAME`. A preset fills in a whole configuration; every option
/// given explicitly on the command line overrides the preset's value, and the preset's name is stored in the run's
/// configuration (and so in every generator file's metadata).
public enum TrainingPreset: String, Codable, Sendable, CaseIterable {
    /// The reference CycleGAN (Zhu et al. 2017; pytorch-CycleGAN-and-pix2pix defaults): 256² slices at the source
    /// spacing, ngf/ndf 64, 9 blocks, linear CT window, identity 0.5, 100 + 100 epochs.
    case reference
    /// A synthetic-CT recipe for real scans that finishes in well under 30 minutes on two cores for a data set the
    /// size of one registered MR/CT study (tens of slices):
    /// - in-plane spacing from the data: the MR volumes' median in-plane spacing, at least 1.5 mm (finer gives little
    ///   on 2-D slices for four times the compute) and at most 3 mm; whole slices large enough for the largest MR field
    ///   of view at that spacing, trained on random 96 × 96 windows (`cropSize`), converted whole (fully convolutional);
    /// - the soft-tissue-aware CT map (`CTIntensityMapping.softTissue`): soft tissue gets 1.0 of the [−1, 1] range
    ///   instead of 0.1;
    /// - the reference losses (LSGAN, cycle 10, identity 0.5; no structure term: on a real pair the MIND term,
    ///   tuned on phantoms, pulled soft tissue by −60 HU), left–right flips;
    /// - capacity and schedule sized for the CPU: ngf 16, ndf 32, 6 residual blocks (the bundled phantom models' capacity), 4000 iterations (half at
    ///   2e-4, half decaying linearly to 0), seed 0.
    case sct

    /// One line per preset for `--help`.
    public var summary: String {
        switch self {
        case .reference: "the reference CycleGAN (256² slices, ngf/ndf 64, 9 blocks, 100+100 epochs)"
        case .sct: "synthetic CT on real scans: spacing and slice size from the MR folder, 96² training windows, "
            + "soft-tissue-aware CT map, ngf 16, ndf 32, 6 blocks, identity 0.5, flips, 4000 iterations"
        }
    }

    /// The configuration this preset starts a run from; `mrFiles` are the MR training volumes, NIfTI files or DICOM
    /// series (only their headers are read, through `VolumeSource.geometry`, for spacing and field of view). The
    /// run's options and data are left empty.
    public func configuration(mrFiles: [URL]) throws -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.preset = self
        switch self {
        case .reference:
            break
        case .sct:
            let (spacing, sliceSize) = try Self.axialField(of: mrFiles, spacingRange: 1.5...3.0)
            c.preprocessing.targetSpacing = spacing
            c.preprocessing.sliceSize = sliceSize
            c.preprocessing.ctMapping = .softTissue
            c.cropSize = min(96, sliceSize)
            c.model.generator.ngf = 16
            c.model.generator.residualBlocks = 6
            c.model.discriminator.ndf = 32
            c.model.lambdaIdentity = 0.5
            c.model.lambdaStructure = 0
            c.augment = true
            c.length = .iterations(4000)
        }
        c.synchroniseChannels()
        return c
    }

    /// The median in-plane (axial) spacing of `files` (NIfTI files or DICOM series, by their headers), clamped to
    /// `spacingRange`, and the slice size (a multiple of 4) that holds the largest axial field of view among them at
    /// that spacing.
    static func axialField(of files: [URL], spacingRange: ClosedRange<Double>) throws -> (spacing: Double, sliceSize: Int) {
        var spacings: [Double] = []
        var extent = 0.0
        for url in files {
            guard let geometry = try? VolumeSource.geometry(of: url),
                  let orientation = CanonicalOrientation(grid: geometry.grid, affine: geometry.affine) else { continue }
            let s = orientation.canonicalSpacing(from: geometry.affine)
            let g = orientation.canonicalGrid
            guard s.x.isFinite, s.y.isFinite, s.x > 0, s.y > 0 else { continue }
            spacings.append(s.x)
            spacings.append(s.y)
            extent = max(extent, Double(g.nx) * s.x, Double(g.ny) * s.y)
        }
        guard !spacings.isEmpty else {
            throw TrainingError(path: files.first?.deletingLastPathComponent().path ?? "MR folder",
                                reason: "--preset sct: no MR volume header could be read to choose the slice spacing")
        }
        spacings.sort()
        let median = spacings[spacings.count / 2]
        let spacing = min(max(median, spacingRange.lowerBound), spacingRange.upperBound)
        let pixels = Int((extent / spacing).rounded(.up))
        let sliceSize = min(max(4 * ((pixels + 3) / 4), 96), 512)
        return (spacing, sliceSize)
    }
}
