import Foundation
import NIfTI

/// The histograms of normalised MR intensities inside the body: the fingerprint of a model's training MR, stored in
/// every generator file's metadata (`IntensityHistogram.metadataKey`), against which conversion checks that an
/// input looks like what the model was trained on.
///
/// Values are the MR after the model's own intensity map (`IntensityMap.mr`: 0.5/99.5 body percentiles → [−1, 1],
/// clipped; or a z-score), counted on fixed bins over `range(for:)` (values outside are counted in the end bins):
/// `counts` for the intensities, `differenceCounts` for the absolute differences of neighbouring body voxels along
/// the volume's first voxel axis (over [0, upper − lower]) — the texture: percentile scaling maps every volume onto
/// the same range, so an intensity histogram alone cannot tell uniform noise (flat) from a head (broad), but
/// noise has neighbour differences of a third of the range where an MR has a few hundredths.
/// The distance of two histograms is the first Wasserstein (earth mover's) distance of their normalised bin
/// masses, ∑ |F₁(b) − F₂(b)| · binWidth over the cumulative distributions F (Villani 2009; for 1-D histograms the
/// L1 distance of the CDFs), divided by the range's width so that it lies in [0, 1]: 0 for equal shapes, 1 when
/// all mass sits at opposite ends.
public struct IntensityHistogram: Codable, Sendable, Hashable {
    /// The key of the stored histogram in a generator file's safetensors `__metadata__`.
    public static let metadataKey = "mr_histogram"
    /// Bins of a histogram made by `init(volume:mask:map:normalization:)`.
    public static let binCount = 64

    /// The normalised range binned, [lower, upper].
    public var lower: Double
    public var upper: Double
    /// Voxel counts per bin.
    public var counts: [Double]
    /// Counts of neighbour differences per bin of [0, upper − lower] (as many bins as `counts`).
    public var differenceCounts: [Double]

    public init(lower: Double, upper: Double, counts: [Double], differenceCounts: [Double]) {
        self.lower = lower
        self.upper = upper
        self.counts = counts
        self.differenceCounts = differenceCounts
    }

    /// The binned range for a normalisation: [−1, 1] for percentile scaling (its values are clipped there), [−4, 4]
    /// standard deviations for the z-score.
    public static func range(for normalization: MRNormalization) -> (lower: Double, upper: Double) {
        switch normalization {
        case .percentile: (-1, 1)
        case .zScore: (-4, 4)
        }
    }

    /// An empty histogram for `normalization`.
    public init(normalization: MRNormalization) {
        let r = Self.range(for: normalization)
        let zeros = [Double](repeating: 0, count: Self.binCount)
        self.init(lower: r.lower, upper: r.upper, counts: zeros, differenceCounts: zeros)
    }

    /// The histograms of `map`-normalised `voxels` inside `mask` (same count; all voxels when the mask is empty);
    /// neighbours are `rowLength` apart rows (the grid's nx).
    public init(voxels: [Float], mask: [Bool], rowLength: Int, map: IntensityMap, normalization: MRNormalization) {
        self.init(normalization: normalization)
        add(voxels: voxels, mask: mask, rowLength: rowLength, map: map)
    }

    /// The histogram of an MR volume as `configuration` prepares it: the body mask (`BodyMask.compute`, or `mask`)
    /// and the volume's own intensity map, exactly as `SlicePipeline.prepare(_:as: .mr)` normalises it.
    public init(mr volume: Volume, configuration: PreprocessingConfiguration, mask: [Bool]? = nil) {
        let mask = mask ?? BodyMask.compute(volume)
        let map = IntensityMap.mr(volume.voxels, mask: mask, normalization: configuration.mrNormalization)
        self.init(voxels: volume.voxels, mask: mask, rowLength: volume.grid.nx, map: map,
                  normalization: configuration.mrNormalization)
    }

    /// Adds the `map`-normalised voxels inside `mask` (all when `mask` holds no voxel), and the differences of
    /// each with its next voxel in the row (rows of `rowLength` voxels) when both are inside.
    public mutating func add(voxels: [Float], mask: [Bool], rowLength: Int, map: IntensityMap) {
        precondition((mask.count == voxels.count || mask.isEmpty) && rowLength >= 1)
        let all = !mask.contains(true)
        let bins = counts.count, lo = lower, scale = Double(bins) / (upper - lower)
        func bin(_ x: Double) -> Int { x.isFinite ? min(max(Int(x.rounded(.down)), 0), bins - 1) : 0 }
        counts.withUnsafeMutableBufferPointer { h in
            differenceCounts.withUnsafeMutableBufferPointer { d in
                voxels.withUnsafeBufferPointer { v in
                    mask.withUnsafeBufferPointer { m in
                        for i in 0..<v.count where all || m[i] {
                            let n = Double(map.normalize(v[i]))
                            h[bin((n - lo) * scale)] += 1
                            if (i + 1) % rowLength != 0, all || m[i + 1] {
                                d[bin(abs(Double(map.normalize(v[i + 1])) - n) * scale)] += 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds another histogram of the same bins (e.g. over the volumes of a training folder).
    public mutating func add(_ other: IntensityHistogram) {
        precondition(isComparable(with: other))
        for b in counts.indices {
            counts[b] += other.counts[b]
            differenceCounts[b] += other.differenceCounts[b]
        }
    }

    /// Total count.
    public var total: Double { counts.reduce(0, +) }

    /// Whether `other` has the same bins (so that a distance is defined).
    public func isComparable(with other: IntensityHistogram) -> Bool {
        other.counts.count == counts.count && other.lower == lower && other.upper == upper && !counts.isEmpty
            && differenceCounts.count == counts.count && other.differenceCounts.count == counts.count
    }

    /// The normalised first Wasserstein distance of the intensity histograms (see the type), in [0, 1]; nil when
    /// the bins differ or either histogram is empty.
    public func intensityDistance(to other: IntensityHistogram) -> Double? {
        guard isComparable(with: other) else { return nil }
        return Self.wasserstein(counts, other.counts)
    }

    /// The same distance for the neighbour-difference histograms.
    public func textureDistance(to other: IntensityHistogram) -> Double? {
        guard isComparable(with: other) else { return nil }
        return Self.wasserstein(differenceCounts, other.differenceCounts)
    }

    /// ∑|F₁ − F₂| / bins of two histograms of the same bins; nil when either is empty.
    static func wasserstein(_ p: [Double], _ q: [Double]) -> Double? {
        let a = p.reduce(0, +), b = q.reduce(0, +)
        guard a > 0, b > 0 else { return nil }
        var fa = 0.0, fb = 0.0, sum = 0.0
        for i in p.indices {
            fa += p[i] / a
            fb += q[i] / b
            sum += abs(fa - fb)
        }
        // Each bin is 1/bins of the range wide: ∑|ΔF|·width / rangeWidth = ∑|ΔF| / bins.
        return sum / Double(p.count)
    }

    /// The JSON stored under `metadataKey`.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Decodes a stored histogram; nil when the text is not one (wrong bins, negative or non-finite counts).
    public init?(json: String) {
        guard let decoded = try? JSONDecoder().decode(IntensityHistogram.self, from: Data(json.utf8)),
              decoded.lower.isFinite, decoded.upper.isFinite, decoded.lower < decoded.upper,
              (1...4096).contains(decoded.counts.count), decoded.differenceCounts.count == decoded.counts.count,
              (decoded.counts + decoded.differenceCounts).allSatisfy({ $0.isFinite && $0 >= 0 }), decoded.total > 0
        else { return nil }
        self = decoded
    }
}
