import Foundation
import Evaluation
import MR2CTSupport
import NIfTI
import VolumeIO
import Preprocessing

/// A synthetic CT to score, with the reference CT (mask, label map) it was matched to, or why none was found.
public struct EvaluationPair: Sendable, Hashable {
    public var prediction: URL
    public var reference: URL?
    /// The mask file; nil = the body mask of the reference CT.
    public var mask: URL?
    /// The tissue label map (whole numbers) for per-label errors; nil = none.
    public var labels: URL? = nil
    public var problem: String?
}

/// Pairs synthetic CTs with reference CTs (and masks) by file name.
///
/// Files are matched by stem: a prediction `x_sct.nii.gz` (or `x.nii.gz`, `x-pred.nii`) goes with the reference
/// whose stem is the longest one that equals the prediction's stem or starts it followed by `_`, `-` or `.`;
/// a mask or label map goes with the reference whose stem it matches the same way (`x_mask.nii.gz` ↔ `x.nii.gz`).
public enum EvaluationMatching {
    /// Files when `path` is a volume file, its volume files when it is a folder.
    static func files(_ path: String) throws -> (urls: [URL], isFolder: Bool) {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw EvaluationInputError(path: url.path, reason: "no such file or folder")
        }
        if isDirectory.boolValue {
            let entries = try VolumeSource.entries(in: url)
            if let bad = entries.first(where: { $0.problem != nil }) {
                throw EvaluationInputError(path: bad.path, reason: bad.problem!)
            }
            guard !entries.isEmpty else { throw EvaluationInputError(path: url.path, reason: "folder holds no NIfTI volume or DICOM series") }
            // A folder that is itself one DICOM series is one volume, like a file.
            if entries.count == 1, entries[0].path == url.path { return ([url], false) }
            return (entries.map(\.url), true)
        }
        return ([url], false)
    }

    /// The pairs to evaluate: every prediction, with its reference, mask and label map or the reason it has none.
    public static func pairs(prediction: String, reference: String, mask: String?, labels: String? = nil) throws
        -> [EvaluationPair] {
        let predictions = try files(prediction), references = try files(reference)
        let referenceByStem = Dictionary(references.urls.map { (VolumeSource.stem(of: $0), $0) }, uniquingKeysWith: { a, _ in a })
        let stems = Array(referenceByStem.keys)
        let masks = try mask.map { try Companions(path: $0, kind: "mask", referenceStems: stems) }
        let labelMaps = try labels.map { try Companions(path: $0, kind: "label map", referenceStems: stems) }
        var pairs = predictions.urls.map { p in
            var pair = EvaluationPair(prediction: p, reference: nil, mask: nil, problem: nil)
            if !references.isFolder {
                pair.reference = references.urls[0]
            } else if let key = VolumeSource.matchingStem(for: VolumeSource.stem(of: p), among: stems) {
                pair.reference = referenceByStem[key]
            } else {
                pair.problem = "no reference CT in \(reference) matches the name \(VolumeSource.stem(of: p))"
                return pair
            }
            guard let ref = pair.reference else { return pair }
            do {
                pair.mask = try masks?.file(for: ref)
                pair.labels = try labelMaps?.file(for: ref)
            } catch {
                pair.problem = "\(error)"
            }
            return pair
        }
        // A reference without a prediction (a conversion that failed or was deleted) is an error for that volume,
        // never silently left out of the summary.
        if references.isFolder && predictions.isFolder {
            let matched = Set(pairs.compactMap(\.reference))
            for ref in references.urls where !matched.contains(ref) {
                pairs.append(EvaluationPair(prediction: URL(fileURLWithPath: prediction).standardizedFileURL, reference: ref,
                                            mask: nil, problem: "no prediction for the reference \(ref.lastPathComponent) "
                                                + "(expected \(VolumeSource.stem(of: ref))_sct.nii.gz or another name starting with "
                                                + "\(VolumeSource.stem(of: ref)))"))
            }
        }
        return pairs
    }

    /// Files that go with reference CTs (masks, label maps): one file for every reference, or a folder matched
    /// by stem.
    struct Companions {
        let path: String, kind: String
        let urls: [URL], isFolder: Bool
        let byReference: [String: [URL]]

        init(path: String, kind: String, referenceStems: [String]) throws {
            (urls, isFolder) = try files(path)
            self.path = path
            self.kind = kind
            var byReference: [String: [URL]] = [:]
            if isFolder {
                for url in urls {
                    if let key = VolumeSource.matchingStem(for: NIfTIFile.stem(of: url), among: referenceStems) { byReference[key, default: []].append(url) }
                }
            }
            self.byReference = byReference
        }

        /// The file for `reference`: the exact stem, else the only candidate; a one-line reason otherwise.
        func file(for reference: URL) throws -> URL {
            guard isFolder else { return urls[0] }
            let stem = VolumeSource.stem(of: reference)
            let candidates = byReference[stem] ?? []
            if let exact = candidates.first(where: { NIfTIFile.stem(of: $0) == stem }) { return exact }
            if candidates.count == 1 { return candidates[0] }
            throw EvaluationError(candidates.isEmpty ? "no \(kind) in \(path) matches the reference \(stem)"
                : "several \(kind)s match the reference \(stem): " + candidates.map(\.lastPathComponent).joined(separator: ", "))
        }
    }
}

/// An evaluation input that does not exist or holds nothing to evaluate.
public struct EvaluationInputError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// The score of one synthetic CT.
public struct EvaluationRecord: Sendable {
    public var pair: EvaluationPair
    public var metrics: SyntheticCTMetrics?
    /// Errors per tissue label (sorted by label) when a label map was given.
    public var labelErrors: [LabelErrorEntry]? = nil
    public var error: String?
    public var status: String { metrics == nil ? "error" : "ok" }

    /// {"kind":"volume","prediction":…,"reference":…,"mask":…|null,"mae":…,"me":…,"psnr":…,"ssim":…,"voxels":…,
    /// "status":…,"error":…}, with "labels":[{"label":…,"name":…,"voxels":…,"mae":…,"me":…},…] after "voxels"
    /// when a label map was given; mask null = the reference's body mask; psnr null = identical images (infinite).
    public var jsonLine: String {
        let m = metrics
        var fields: [(String, String)] = [
            ("kind", JSONText.string("volume")),
            ("prediction", JSONText.string(pair.prediction.path)),
            ("reference", pair.reference.map { JSONText.string($0.path) } ?? "null"),
            ("mask", pair.mask.map { JSONText.string($0.path) } ?? "null"),
            ("mae", m.map { JSONText.number($0.mae) } ?? "null"),
            ("me", m.map { JSONText.number($0.me) } ?? "null"),
            ("psnr", m.map { JSONText.number($0.psnr) } ?? "null"),
            ("ssim", m.map { JSONText.number($0.ssim, digits: 8) } ?? "null"),
            ("voxels", m.map { "\($0.voxels)" } ?? "null"),
        ]
        if pair.labels != nil {
            fields.append(("labels", labelErrors.map { JSONText.array($0.map { $0.json() }) } ?? "null"))
        }
        fields.append(("status", JSONText.string(status)))
        fields.append(("error", error.map(JSONText.string) ?? "null"))
        return JSONText.object(fields)
    }
}

/// Mean and sample standard deviation (n − 1) of each metric over the volumes that were scored.
public struct EvaluationSummary: Sendable {
    public struct Statistic: Sendable, Hashable {
        public var mean: Double
        /// nil for fewer than two values.
        public var sd: Double?
    }
    public var volumes: Int
    public var failed: Int
    public var mae, me, psnr, ssim: Statistic?
    /// Per-label errors pooled over the voxels of every scored volume (sorted by label); nil without label maps.
    public var labelErrors: [LabelErrorEntry]?

    public init(_ records: [EvaluationRecord]) {
        let scored = records.compactMap(\.metrics)
        volumes = scored.count
        failed = records.count - scored.count
        func statistic(_ values: [Double]) -> Statistic? {
            guard !values.isEmpty else { return nil }
            let mean = values.reduce(0, +) / Double(values.count)
            guard values.count > 1 else { return Statistic(mean: mean, sd: nil) }
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
            return Statistic(mean: mean, sd: variance.squareRoot())
        }
        mae = statistic(scored.map(\.mae))
        me = statistic(scored.map(\.me))
        psnr = statistic(scored.map(\.psnr))
        ssim = statistic(scored.map(\.ssim))
        let perVolume = records.compactMap(\.labelErrors)
        if !perVolume.isEmpty {
            var pooled: [Int: LabelErrorEntry] = [:]
            for entry in perVolume.joined() {
                pooled[entry.label, default: LabelErrorEntry(label: entry.label, name: entry.name, tally: .init())].tally.add(entry.tally)
            }
            labelErrors = pooled.values.sorted { $0.label < $1.label }
        }
    }

    /// The labelled voxels of all volumes (the denominator of each label's share).
    var labelledVoxels: Int { labelErrors?.reduce(0) { $0 + $1.tally.voxels } ?? 0 }

    /// {"kind":"summary","volumes":…,"failed":…,"mae_mean":…,"mae_sd":…,…}
    public var jsonLine: String {
        var fields: [(String, String)] = [("kind", JSONText.string("summary")), ("volumes", "\(volumes)"), ("failed", "\(failed)")]
        for (name, s) in [("mae", mae), ("me", me), ("psnr", psnr), ("ssim", ssim)] {
            fields.append(("\(name)_mean", s.map { JSONText.number($0.mean, digits: name == "ssim" ? 8 : 6) } ?? "null"))
            fields.append(("\(name)_sd", s?.sd.map { JSONText.number($0, digits: name == "ssim" ? 8 : 6) } ?? "null"))
        }
        if let labelErrors {
            // share: the label's part of the scored voxels; contribution: its part of the pooled MAE (they sum to it).
            let total = Double(max(1, labelledVoxels))
            fields.append(("labels", JSONText.array(labelErrors.map { entry in
                entry.json(extra: [("share", JSONText.number(Double(entry.tally.voxels) / total)),
                                   ("mae_contribution", JSONText.number(entry.tally.absoluteErrorSum / total))])
            })))
        }
        return JSONText.object(fields)
    }
}

/// Scores synthetic CTs against reference CTs.
public enum EvaluationRunner {
    /// Two grids agree when their sizes are equal and their affines differ by at most 1e-4 of the largest entry
    /// (float32 headers round-trip to about 1e-7).
    static func sameGrid(_ a: Volume, _ b: Volume) -> Bool { a.hasSameGrid(as: b) }

    /// What differs between two grids (`Volume.gridDifference(from:)`); nil when `sameGrid`.
    static func gridDifference(_ a: Volume, _ b: Volume) -> String? { a.gridDifference(from: b) }

    /// Scores one pair: reads the volumes, checks that they share a grid, takes the mask (file voxels > 0, or the
    /// reference's body mask) and computes the SynthRAD metrics.
    /// With a label map (same grid, whole numbers) the errors are also tallied per label inside the mask, named
    /// from `labelNames`.
    public static func evaluate(_ pair: EvaluationPair, ssimWindow: SSIMWindow = .synthRAD,
                                readOptions: NIfTIReadOptions = .init(), labelNames: [Int: String] = [:]) -> EvaluationRecord {
        // Errors name their file, "<prediction>: <reason>", in the JSON line as on stderr.
        var record = EvaluationRecord(pair: pair, metrics: nil, error: pair.problem.map { "\(pair.prediction.path): \($0)" })
        guard pair.problem == nil, let referenceURL = pair.reference else { return record }
        do {
            let prediction = try VolumeSource.read(pair.prediction, options: readOptions)
            let reference = try VolumeSource.read(referenceURL, options: readOptions)
            if let difference = gridDifference(prediction, reference) {
                throw EvaluationInputError(path: pair.prediction.path, reason: "not on the grid of \(referenceURL.path) "
                                           + "(\(difference))")
            }
            let mask: [Bool]
            if let maskURL = pair.mask {
                let volume = try NIfTIFile.read(maskURL, options: readOptions)
                guard sameGrid(volume, reference) else {
                    throw EvaluationInputError(path: maskURL.path, reason: "mask is not on the grid of \(referenceURL.path)")
                }
                mask = volume.voxels.map { $0 > 0 }
            } else {
                mask = BodyMask.compute(reference)
            }
            do {
                record.metrics = try SyntheticCTEvaluation.evaluate(prediction: prediction, reference: reference,
                                                                    mask: mask, ssimWindow: ssimWindow)
            } catch {
                throw EvaluationInputError(path: pair.prediction.path, reason: "\(error)")
            }
            if let labelsURL = pair.labels {
                let labels = try NIfTIFile.read(labelsURL, options: readOptions)
                guard sameGrid(labels, reference) else {
                    throw EvaluationInputError(path: labelsURL.path, reason: "label map is not on the grid of \(referenceURL.path)")
                }
                do {
                    let tallies = try LabelErrors.tally(prediction: prediction.voxels, reference: reference.voxels,
                                                        labels: labels.voxels, mask: mask)
                    record.labelErrors = tallies.keys.sorted().map { LabelErrorEntry(label: $0, name: labelNames[$0], tally: tallies[$0]!) }
                } catch {
                    throw EvaluationInputError(path: labelsURL.path, reason: "\(error)")
                }
            }
        } catch {
            record.metrics = nil
            record.labelErrors = nil
            record.error = "\(pair.prediction.path): " + ConversionRunner.reason(of: error, path: pair.prediction.path)
        }
        return record
    }

    /// The records and the summary as CSV: one row per volume, then a "mean" and an "sd" row (their `voxels` cell
    /// empty: a voxel count has no mean). With label maps a
    /// column `mae_<name or label>` per label follows; its "mean" row is pooled over all volumes' voxels.
    public static func csv(_ records: [EvaluationRecord], summary: EvaluationSummary) -> String {
        func field(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        func number(_ x: Double?, digits: Int = 6) -> String { x.map { $0.isFinite ? JSONText.number($0, digits: digits) : "inf" } ?? "" }
        let labels = summary.labelErrors ?? []
        let labelHeader = labels.map { field("mae_" + ($0.name ?? "\($0.label)")) }
        func labelCells(_ entries: [LabelErrorEntry]?) -> [String] {
            labels.map { label in number(entries?.first(where: { $0.label == label.label })?.tally.mae) }
        }
        var lines = [(["row", "prediction", "reference", "mask", "mae", "me", "psnr", "ssim", "voxels", "status", "error"]
                      + labelHeader).joined(separator: ",")]
        for r in records {
            let m = r.metrics
            lines.append(([
                "volume", field(r.pair.prediction.path), field(r.pair.reference?.path ?? ""), field(r.pair.mask?.path ?? ""),
                number(m?.mae), number(m?.me), number(m?.psnr), number(m?.ssim, digits: 8), m.map { "\($0.voxels)" } ?? "",
                r.status, field(r.error ?? ""),
            ] + labelCells(r.labelErrors)).joined(separator: ","))
        }
        let s = summary
        lines.append((["mean", "", "", "", number(s.mae?.mean), number(s.me?.mean), number(s.psnr?.mean),
                       number(s.ssim?.mean, digits: 8), "", "", ""] + labelCells(s.labelErrors)).joined(separator: ","))
        lines.append((["sd", "", "", "", number(s.mae?.sd), number(s.me?.sd), number(s.psnr?.sd),
                       number(s.ssim?.sd, digits: 8), "", "", ""] + labels.map { _ in "" }).joined(separator: ","))
        return lines.joined(separator: "\n") + "\n"
    }
}
