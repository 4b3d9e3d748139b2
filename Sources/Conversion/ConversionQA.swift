import Foundation
import CycleGAN
import SyntheticCT
import NIfTI
import Preprocessing

/// Why a synthetic CT may not be trustworthy. Each case has a stable code (the `code` of the JSON line's
/// `qa.warnings` entries; `--strict` makes any warning an error).
public enum QAWarning: Hashable, Sendable {
    /// Part of the body (the conversion's body mask) got no prediction from the network (its field did not
    /// reach it, or a slice was not run): those voxels are not a synthetic CT. `share` is the part predicted.
    case bodyOutsideField(share: Double)
    /// The MR's normalised intensity histogram inside the body, or its neighbour-difference (texture) histogram,
    /// is farther than `threshold` from the one stored with model `model` (`IntensityHistogram.intensityDistance`,
    /// `textureDistance`): the input does not look like the MR the model was trained on (another contrast, a CT,
    /// noise).
    case inputUnlikeTraining(model: String, intensityDistance: Double, textureDistance: Double, threshold: Double)
    /// An in-plane spacing of the slices (mm) is more than `QualityCheck.spacingRatioLimit` times finer or coarser
    /// than the model's target spacing, so resampling changes the image far beyond what training saw.
    case spacingOutsideRange(model: String, plane: SlicePlane, spacing: Double, targetSpacing: Double)
    /// Slices are predicted in a plane the model was not trained on.
    case planeNotTrained(model: String, plane: SlicePlane, trainedPlane: SlicePlane)

    /// The stable code.
    public var code: String {
        switch self {
        case .bodyOutsideField: "body_outside_field"
        case .inputUnlikeTraining: "input_unlike_training"
        case .spacingOutsideRange: "spacing_outside_range"
        case .planeNotTrained: "plane_not_trained"
        }
    }

    /// One line for people.
    public var message: String {
        switch self {
        case let .bodyOutsideField(share):
            String(format: "only %.4f of the body is inside the predicted field", share)
        case let .inputUnlikeTraining(model, intensity, texture, threshold):
            String(format: "the MR's body histograms are %.3f (intensity) and %.3f (texture) from %@'s training MR (limit %.3f)",
                   intensity, texture, model, threshold)
        case let .spacingOutsideRange(model, plane, spacing, target):
            String(format: "%@ pixel spacing %.3g mm is far from %@'s %.3g mm", plane.rawValue, spacing, model, target)
        case let .planeNotTrained(model, plane, trained):
            "predicted in \(plane.rawValue) slices, \(model) was trained on \(trained.rawValue)"
        }
    }

    var json: String {
        var fields = [("code", JSONText.string(code)), ("message", JSONText.string(message))]
        switch self {
        case let .bodyOutsideField(share): fields.append(("share", JSONText.number(share)))
        case let .inputUnlikeTraining(model, intensity, texture, _):
            fields += [("model", JSONText.string(model)), ("intensityDistance", JSONText.number(intensity)),
                       ("textureDistance", JSONText.number(texture))]
        case let .spacingOutsideRange(model, plane, spacing, target):
            fields += [("model", JSONText.string(model)), ("plane", JSONText.string(plane.rawValue)),
                       ("spacing", JSONText.number(spacing)), ("targetSpacing", JSONText.number(target))]
        case let .planeNotTrained(model, plane, trained):
            fields += [("model", JSONText.string(model)), ("plane", JSONText.string(plane.rawValue)),
                       ("trainedPlane", JSONText.string(trained.rawValue))]
        }
        return JSONText.object(fields)
    }
}

/// A tissue band of the synthetic CT's HU values inside the body.
public enum TissueBand: String, CaseIterable, Sendable {
    /// Below −200 HU (air, lung).
    case airLung
    /// −200 … −30 HU.
    case fat
    /// −30 … +200 HU (water, muscle, organs, blood).
    case softTissue
    /// +200 HU and above (cancellous and cortical bone, metal).
    case bone

    /// The band of `hu`.
    @inlinable public static func of(_ hu: Float) -> TissueBand { allCases[index(of: hu)] }

    /// The position in `allCases` of the band of `hu` (no allocation: the per-voxel path).
    @inlinable public static func index(of hu: Float) -> Int {
        hu < -200 ? 0 : (hu < -30 ? 1 : (hu < 200 ? 2 : 3))
    }
}

/// The QA verdict of one converted volume: how much of the body the network predicted, how much of it came out as
/// air or metal, the tissue make-up, and warnings.
public struct QualityCheck: Sendable, Hashable {
    /// Body voxels below this are "air" (HU).
    public static let airLimit: Float = -500
    /// Body voxels above this are "metal / very dense" (HU).
    public static let denseLimit: Float = 2000
    /// `input_unlike_training` when the normalised Wasserstein-1 distance of either body histogram (intensity or
    /// texture) exceeds this. Measured against the bundled models' training histograms (README "Converting MR
    /// volumes"): the held-out and training phantoms at most 0.058 (intensity) and 0.012 (texture); a CT given as
    /// MR 0.248 (intensity), uniform noise 0.225 (texture).
    public static let histogramDistanceLimit = 0.1
    /// `spacing_outside_range` when an in-plane spacing is more than this factor finer or coarser than the
    /// model's target spacing.
    public static let spacingRatioLimit = 2.0

    public struct Band: Sendable, Hashable {
        public var band: TissueBand
        /// Share of the body voxels in the band.
        public var fraction: Double
        /// Mean HU of the band's voxels; nil when it has none.
        public var meanHU: Double?
    }

    /// Voxels of the body mask.
    public var bodyVoxels: Int
    /// Share of the body voxels that every prediction covered.
    public var bodyInsideField: Double
    /// Share of the body voxels below `airLimit` and above `denseLimit`.
    public var bodyAir: Double
    public var bodyDense: Double
    public var bands: [Band]
    /// The largest intensity and texture histogram distances over the models that store a training histogram;
    /// nil when none does (then there is no input check).
    public var intensityDistance: Double?
    public var textureDistance: Double?
    public var warnings: [QAWarning]

    /// A model as the check sees it.
    public struct ModelFacts: Sendable {
        public var name: String
        public var preprocessing: PreprocessingConfiguration
        public var histogram: IntensityHistogram?
        public init(name: String, preprocessing: PreprocessingConfiguration, histogram: IntensityHistogram?) {
            self.name = name
            self.preprocessing = preprocessing
            self.histogram = histogram
        }
    }

    /// Assesses a conversion: `syntheticCT` (HU) of `mr` inside `bodyMask`, `covered` the voxels every prediction
    /// covered (nil: all of them), predicted in `planes` (nil: each model's own) by `models`.
    public static func assess(mr: Volume, syntheticCT: Volume, bodyMask: [Bool], covered: [Bool]?,
                              models: [ModelFacts], planes: [SlicePlane]?) -> QualityCheck {
        precondition(bodyMask.count == mr.grid.count && (covered?.count ?? mr.grid.count) == mr.grid.count
                     && syntheticCT.voxels.count == mr.grid.count)
        var body = 0, inside = 0, air = 0, dense = 0
        var bandCount = [Int](repeating: 0, count: TissueBand.allCases.count)
        var bandSum = [Double](repeating: 0, count: TissueBand.allCases.count)
        let everywhere = [true]
        syntheticCT.voxels.withUnsafeBufferPointer { v in
            bodyMask.withUnsafeBufferPointer { m in
                (covered ?? everywhere).withUnsafeBufferPointer { c in
                    let all = covered == nil
                    for i in 0..<v.count where m[i] {
                        body += 1
                        if all || c[i] { inside += 1 }
                        let hu = v[i]
                        if hu < airLimit { air += 1 }
                        if hu > denseLimit { dense += 1 }
                        let b = TissueBand.index(of: hu)
                        bandCount[b] += 1
                        bandSum[b] += Double(hu)
                    }
                }
            }
        }
        let n = Double(max(body, 1))
        let bands = TissueBand.allCases.enumerated().map { b, band in
            Band(band: band, fraction: Double(bandCount[b]) / n, meanHU: bandCount[b] > 0 ? bandSum[b] / Double(bandCount[b]) : nil)
        }
        let share = body > 0 ? Double(inside) / Double(body) : 1
        var warnings: [QAWarning] = []
        if inside < body { warnings.append(.bodyOutsideField(share: share)) }

        var intensityDistance: Double?, textureDistance: Double?
        var histograms: [String: IntensityHistogram] = [:]    // by normalisation, computed once
        for model in models {
            guard let stored = model.histogram else { continue }
            let key = "\(model.preprocessing.mrNormalization)"
            let observed = histograms[key] ?? IntensityHistogram(mr: mr, configuration: model.preprocessing, mask: bodyMask)
            histograms[key] = observed
            guard let d = observed.intensityDistance(to: stored), let t = observed.textureDistance(to: stored) else { continue }
            intensityDistance = max(intensityDistance ?? 0, d)
            textureDistance = max(textureDistance ?? 0, t)
            if d > histogramDistanceLimit || t > histogramDistanceLimit {
                warnings.append(.inputUnlikeTraining(model: model.name, intensityDistance: d, textureDistance: t,
                                                     threshold: histogramDistanceLimit))
            }
        }

        let orientation = CanonicalOrientation(grid: mr.grid, affine: mr.affine)
        let spacing = orientation?.canonicalSpacing(from: mr.affine)
        for model in models {
            for plane in planes ?? [model.preprocessing.plane] {
                if plane != model.preprocessing.plane {
                    warnings.append(.planeNotTrained(model: model.name, plane: plane, trainedPlane: model.preprocessing.plane))
                }
                guard let target = model.preprocessing.targetSpacing, let spacing else { continue }
                // The in-plane canonical axes of the plane (as PlaneLayout takes them).
                let axes = switch plane {
                case .axial: [0, 1]
                case .coronal: [0, 2]
                case .sagittal: [1, 2]
                }
                if let far = axes.map({ spacing[$0] }).first(where: { $0 > target * spacingRatioLimit || $0 < target / spacingRatioLimit }) {
                    warnings.append(.spacingOutsideRange(model: model.name, plane: plane, spacing: far, targetSpacing: target))
                }
            }
        }
        return QualityCheck(bodyVoxels: body, bodyInsideField: share, bodyAir: Double(air) / n, bodyDense: Double(dense) / n,
                            bands: bands, intensityDistance: intensityDistance, textureDistance: textureDistance,
                            warnings: warnings)
    }

    /// {"bodyVoxels":…,"bodyInsideField":…,"bodyAir":…,"bodyDense":…,"tissues":{"airLung":{"fraction":…,"meanHU":…},…},
    /// "intensityDistance":…|null,"textureDistance":…|null,"histogramLimit":…,"warnings":[{"code":…,"message":…,…},…]}
    public var json: String {
        let tissues = JSONText.object(bands.map { band in
            (band.band.rawValue, JSONText.object([("fraction", JSONText.number(band.fraction)),
                                                  ("meanHU", band.meanHU.map { JSONText.number($0, digits: 1) } ?? "null")]))
        })
        return JSONText.object([
            ("bodyVoxels", String(bodyVoxels)),
            ("bodyInsideField", JSONText.number(bodyInsideField)),
            ("bodyAir", JSONText.number(bodyAir)),
            ("bodyDense", JSONText.number(bodyDense)),
            ("tissues", tissues),
            ("intensityDistance", intensityDistance.map { JSONText.number($0) } ?? "null"),
            ("textureDistance", textureDistance.map { JSONText.number($0) } ?? "null"),
            ("histogramLimit", JSONText.number(Self.histogramDistanceLimit)),
            ("warnings", JSONText.array(warnings.map(\.json))),
        ])
    }

    /// Short lines for the preview image.
    public var summaryLines: [String] {
        var lines = [String(format: "BODY IN FIELD %.1f%%  AIR %.1f%%  DENSE %.1f%%", 100 * bodyInsideField, 100 * bodyAir, 100 * bodyDense)]
        if let intensityDistance, let textureDistance {
            lines.append(String(format: "HISTOGRAM DISTANCE %.3f, TEXTURE %.3f (LIMIT %.2f)", intensityDistance, textureDistance,
                                Self.histogramDistanceLimit))
        } else {
            lines.append("NO TRAINING HISTOGRAM: NO INPUT CHECK")
        }
        lines.append(warnings.isEmpty ? "NO WARNINGS" : "WARNINGS: " + warnings.map(\.code).joined(separator: " "))
        return lines
    }
}
