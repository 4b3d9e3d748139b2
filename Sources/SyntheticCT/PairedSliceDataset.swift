import Foundation
import MR2CTSupport
import NIfTI
import VolumeIO
import NeuralNetwork
import Preprocessing
import Training

/// One registered MR/CT pair on disk.
public struct VolumePair: Sendable, Hashable {
    public var mr: URL
    public var ct: URL
    public init(mr: URL, ct: URL) { self.mr = mr; self.ct = ct }
}

/// One training batch of paired training: the MR slice (1 × C × S × S, context channels), the registered CT slice
/// (1 × 1 × S × S) and the MR's body mask on that slice (S × S, 1 inside).
public struct PairedBatch {
    public var mr: Tensor
    public var ct: Tensor
    public var body: [Float]

    public init(mr: Tensor, ct: Tensor, body: [Float]) {
        self.mr = mr
        self.ct = ct
        self.body = body
    }
}

/// Registered MR/CT pairs as training data: pix2pix's (`train --paired`) and the supervised term of semi-supervised
/// CycleGAN training (`train --paired-mr --paired-ct`).
///
/// Pairs are matched by name as `mr2ct evaluate` matches predictions to references (`VolumeSource.matchingStem`): the
/// CT whose stem is the longest that equals the MR's stem or starts it before `_`, `-` or `.`. Both volumes of a
/// pair must be on the same grid (dims and affine, as `evaluate` compares them); nothing is resampled.
///
/// Each volume is prepared on its own with `SlicePipeline` exactly as unpaired training and conversion prepare it
/// (canonical orientation, its own body mask, MR normalisation, CT intensity map, `ctOutsideBody`/`mrOutsideBody`,
/// resampling to the target spacing, pad/crop to `sliceSize`); a slice is used when both its MR and its CT body
/// fraction reach `minimumBodyFraction`. The network-size slices are kept in memory (float32), which is checked
/// against `memoryLimit` from the headers before any volume is read.
///
/// `batch(at: i)` is a pure function of (seed, i): a usable slice drawn uniformly with `SeededRandom(seed:
/// stream: i)`, then (with `augment`) one left–right flip for both images, then (with `cropSize`) one window
/// position for both.
public final class PairedSliceDataset: ShardedTrainingData {
    public let configuration: PreprocessingConfiguration
    public let pairs: [VolumePair]
    public let seed: UInt64
    public let augment: Bool
    public let cropSize: Int?
    /// The training MR's normalised body-intensity histogram (stored with the generator for conversion's check).
    public let mrHistogram: IntensityHistogram
    /// (pair index, slice index) of every usable slice, in order.
    public let usable: [(pair: Int, slice: Int)]
    /// Slices kept in memory per usable slice: MR channels, CT, body mask at sliceSize².
    private let mrSlices: [[Float]]
    private let ctSlices: [[Float]]
    private let bodySlices: [[Float]]

    /// The most memory the kept slices may take (bytes).
    public static let memoryLimit = 8 << 30

    public var epochLength: Int { usable.count }
    /// The samples of each iteration (`BatchPlan`: sample `s` is the one `batch(at: s)` gave at batch 1); set
    /// before training, batch 1 on one process by default.
    public var batchPlan = BatchPlan()
    public var outputSize: Int { cropSize ?? configuration.sliceSize }

    /// The pairs of two folders, matched by name; an MR without a CT, or a CT without an MR, is an error.
    public static func match(mrFiles: [URL], ctFiles: [URL]) throws -> [VolumePair] {
        let stems = Dictionary(ctFiles.map { (NIfTIFile.stem(of: $0), $0) }, uniquingKeysWith: { a, _ in a })
        var pairs: [VolumePair] = [], used = Set<String>()
        for mr in mrFiles {
            guard let key = VolumeSource.matchingStem(for: NIfTIFile.stem(of: mr), among: Array(stems.keys)), let ct = stems[key] else {
                throw RunError.data(path: mr.path, reason: "no CT in \(ctFiles.first?.deletingLastPathComponent().path ?? "the CT folder") "
                                    + "matches the name \(NIfTIFile.stem(of: mr)) (paired training needs a registered CT for every MR)")
            }
            guard used.insert(key).inserted else {
                throw RunError.data(path: mr.path, reason: "the CT \(ct.lastPathComponent) already goes with another MR")
            }
            pairs.append(VolumePair(mr: mr, ct: ct))
        }
        if let lonely = ctFiles.first(where: { !used.contains(NIfTIFile.stem(of: $0)) }) {
            throw RunError.data(path: lonely.path, reason: "no MR matches this CT (paired training uses registered pairs only)")
        }
        return pairs
    }

    public init(pairs: [VolumePair], configuration: PreprocessingConfiguration, seed: UInt64, augment: Bool,
                cropSize: Int?, messages: (String) -> Void = { _ in }) throws {
        try configuration.validate()
        if let cropSize, let problem = UnpairedSliceLoader.cropProblem(cropSize, sliceSize: configuration.sliceSize) {
            throw RunError.data(path: "training data", reason: problem)
        }
        guard !pairs.isEmpty else { throw RunError.data(path: "training data", reason: "no MR/CT pair given") }
        // Memory from the headers, before any voxel is read: every slice of every pair kept at the network size.
        let plane = configuration.sliceSize * configuration.sliceSize
        var slicesEstimate = 0
        for pair in pairs {
            let header: NIfTIHeader
            do { header = try NIfTIFile.readHeader(pair.mr) } catch { throw RunError.data(path: pair.mr.path, reason: "\(error)") }
            slicesEstimate += header.dim.dropFirst().prefix(3).max() ?? 0
        }
        let bytes = slicesEstimate.multipliedReportingOverflow(by: plane * 4 * (configuration.contextSlices + 2))
        guard !bytes.overflow, bytes.partialValue <= Self.memoryLimit else {
            throw RunError.data(path: pairs[0].mr.deletingLastPathComponent().path,
                                reason: "the pairs' slices would take about \(bytes.overflow ? Int.max >> 20 : bytes.partialValue >> 20) MiB "
                                    + "in memory, more than the limit of \(Self.memoryLimit >> 20) MiB; train on fewer pairs or a smaller --slice-size")
        }
        self.configuration = configuration
        self.pairs = pairs
        self.seed = seed
        self.augment = augment
        self.cropSize = cropSize
        let pipeline = SlicePipeline(configuration: configuration)
        var histogram = IntensityHistogram(normalization: configuration.mrNormalization)
        var usable: [(pair: Int, slice: Int)] = []
        var mrSlices: [[Float]] = [], ctSlices: [[Float]] = [], bodySlices: [[Float]] = []
        for (index, pair) in pairs.enumerated() {
            let mr: Volume, ct: Volume
            do { mr = try VolumeSource.read(pair.mr) } catch { throw RunError.data(path: pair.mr.path, reason: "\(Self.reason(error))") }
            do { ct = try VolumeSource.read(pair.ct) } catch { throw RunError.data(path: pair.ct.path, reason: "\(Self.reason(error))") }
            if let difference = mr.gridDifference(from: ct) {
                throw RunError.data(path: pair.mr.path, reason: "its CT \(pair.ct.path) is on another grid: \(difference) "
                                    + "(paired training needs registered pairs on the same grid; nothing is resampled)")
            }
            let preparedMR: PreparedVolume, preparedCT: PreparedVolume
            do { preparedMR = try pipeline.prepare(mr, as: .mr) } catch { throw RunError.data(path: pair.mr.path, reason: Self.reason(error)) }
            do { preparedCT = try pipeline.prepare(ct, as: .ct) } catch { throw RunError.data(path: pair.ct.path, reason: Self.reason(error)) }
            histogram.add(IntensityHistogram(voxels: mr.voxels, mask: preparedMR.bodyMask, rowLength: mr.grid.nx,
                                             map: preparedMR.intensityMap, normalization: configuration.mrNormalization))
            var found = 0
            for s in 0..<preparedMR.sliceCount {
                let a = preparedMR.bodyFraction(ofSlice: s), b = preparedCT.bodyFraction(ofSlice: s)
                guard a > 0, b > 0, a >= configuration.minimumBodyFraction, b >= configuration.minimumBodyFraction else { continue }
                usable.append((index, s))
                mrSlices.append(preparedMR.inputSlice(s))
                ctSlices.append(preparedCT.processedSlice(s))
                bodySlices.append(preparedMR.bodyMaskSlice(s).map { $0 ? 1 : 0 })
                found += 1
            }
            if found == 0 {
                throw RunError.data(path: pair.mr.path, reason: String(format: "no slice of the pair has an MR and a CT body fraction of at least %.3g",
                                                                       configuration.minimumBodyFraction))
            }
            messages("pair \(pair.mr.lastPathComponent) + \(pair.ct.lastPathComponent): \(found) of \(preparedMR.sliceCount) slices used")
        }
        self.usable = usable
        self.mrSlices = mrSlices
        self.ctSlices = ctSlices
        self.bodySlices = bodySlices
        mrHistogram = histogram
    }

    /// The reason of a reading error without the file name its description may start with (the caller names the file).
    public static func reason(_ error: any Error) -> String {
        if let e = error as? PreprocessingError { return e.reason }
        let text = "\(error)"
        if let range = text.range(of: ": "), text[..<range.lowerBound].contains("/") { return String(text[range.upperBound...]) }
        return text
    }

    /// What iteration `iteration` trains on: the index into `usable`, its pair and slice, the flip and the window
    /// origin (row, column).
    public func plan(at iteration: Int) -> (index: Int, pair: Int, slice: Int, flip: Bool, row: Int, column: Int) {
        var random = SeededRandom(seed: seed, stream: UInt64(truncatingIfNeeded: iteration))
        let u = Int(random.next().multipliedFullWidth(by: UInt64(usable.count)).high)
        let flip = augment && random.next() >> 63 == 1
        var row = 0, column = 0
        if let cropSize {
            let span = UInt64(configuration.sliceSize - cropSize + 1)
            row = Int(random.next().multipliedFullWidth(by: span).high)
            column = Int(random.next().multipliedFullWidth(by: span).high)
        }
        return (u, usable[u].pair, usable[u].slice, flip, row, column)
    }

    /// The iteration's batch: this process's samples of it (`batchPlan`) stacked, B × C × S × S.
    public func batch(at iteration: Int) throws -> PairedBatch {
        let samples = batchPlan.samples(atIteration: iteration)
        if samples.count == 1 { return try sample(at: samples.lowerBound) }
        let parts = try samples.map { try sample(at: $0) }
        func stack(_ tensors: [Tensor]) -> Tensor {
            var shape = tensors[0].shape
            shape[0] = tensors.count
            return Tensor(shape: shape, values: tensors.flatMap { $0.toArray() })
        }
        return PairedBatch(mr: stack(parts.map(\.mr)), ct: stack(parts.map(\.ct)), body: parts.flatMap(\.body))
    }

    /// Global sample `index` (what iteration `index` trained on at batch 1).
    public func sample(at index: Int) throws -> PairedBatch {
        let p = plan(at: index)
        let s = configuration.sliceSize, n = outputSize, channels = configuration.contextSlices
        func window(_ source: [Float], planes: Int) -> [Float] {
            var out = [Float](repeating: 0, count: planes * n * n)
            source.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for c in 0..<planes {
                        for r in 0..<n {
                            let from = c * s * s + (p.row + r) * s, to = c * n * n + r * n
                            for k in 0..<n {
                                dst[to + k] = p.flip ? src[from + s - 1 - p.column - k] : src[from + p.column + k]
                            }
                        }
                    }
                }
            }
            return out
        }
        return PairedBatch(mr: Tensor(shape: [1, channels, n, n], values: window(mrSlices[p.index], planes: channels)),
                           ct: Tensor(shape: [1, 1, n, n], values: window(ctSlices[p.index], planes: 1)),
                           body: window(bodySlices[p.index], planes: 1))
    }

    /// A fixed pair for the picture grids: the middle usable slice, whole.
    public func sampleBatch() -> PairedBatch {
        let s = configuration.sliceSize, channels = configuration.contextSlices
        let i = usable.count / 2
        return PairedBatch(mr: Tensor(shape: [1, channels, s, s], values: mrSlices[i]),
                           ct: Tensor(shape: [1, 1, s, s], values: ctSlices[i]), body: bodySlices[i])
    }
}
