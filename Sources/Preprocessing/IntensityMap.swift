import NIfTI

/// A linear intensity map: `lower` → −1 and `upper` → +1, optionally clipped to [−1, 1], and its inverse.
/// CT: the HU window (SynthRAD: [−1024, 3000]), clipped. MR percentile scaling: the body's lower/upper
/// percentiles, clipped. MR z-score: mean ∓ one standard deviation, not clipped.
public struct IntensityMap: Codable, Sendable, Hashable {
    public var lower: Double
    public var upper: Double
    public var clipped: Bool

    public init(lower: Double, upper: Double, clipped: Bool) {
        self.lower = lower
        // A constant volume would divide by zero: map it to a unit-wide interval instead.
        self.upper = upper > lower ? upper : lower + 1
        self.clipped = clipped
    }

    /// The CT window map.
    public static func ctWindow(_ configuration: PreprocessingConfiguration) -> IntensityMap {
        IntensityMap(lower: Double(configuration.ctWindowLower), upper: Double(configuration.ctWindowUpper), clipped: true)
    }

    /// Normalises one value.
    @inlinable public func normalize(_ v: Float) -> Float {
        let n = Float((Double(v) - lower) * (2 / (upper - lower)) - 1)
        return clipped ? min(max(n, -1), 1) : n
    }

    /// Maps a normalised value back to intensity units (HU for CT); clipping is not undone.
    @inlinable public func denormalize(_ n: Float) -> Float {
        Float(lower + (Double(n) + 1) * 0.5 * (upper - lower))
    }

    /// Normalises a buffer in place (the hot path: Float arithmetic with precomputed constants).
    public func normalize(_ values: UnsafeMutableBufferPointer<Float>) {
        let scale = Float(2 / (upper - lower)), offset = Float(-1 - lower * 2 / (upper - lower))
        if clipped {
            for i in values.indices { values[i] = min(max(values[i] * scale + offset, -1), 1) }
        } else {
            for i in values.indices { values[i] = values[i] * scale + offset }
        }
    }

    /// Maps a buffer back to intensity units in place.
    public func denormalize(_ values: UnsafeMutableBufferPointer<Float>) {
        let half = (upper - lower) * 0.5
        for i in values.indices { values[i] = Float(lower + (Double(values[i]) + 1) * half) }
    }

    /// The MR map of `voxels` restricted to `mask` (all voxels when the mask is empty or absent).
    public static func mr(_ voxels: [Float], mask: [Bool]?, normalization: MRNormalization) -> IntensityMap {
        var inside: [Float]
        if let mask, mask.contains(true) {
            inside = []
            inside.reserveCapacity(voxels.count / 2)
            for i in voxels.indices where mask[i] { inside.append(voxels[i]) }
        } else {
            inside = voxels
        }
        switch normalization {
        case let .percentile(lo, hi):
            let (p, q) = inside.withUnsafeMutableBufferPointer {
                (Statistics.percentile($0, lo), Statistics.percentile($0, hi))
            }
            return IntensityMap(lower: p, upper: q, clipped: true)
        case .zScore:
            var sum = 0.0
            for v in inside { sum += Double(v) }
            let mean = sum / Double(max(inside.count, 1))
            var ss = 0.0
            for v in inside { ss += (Double(v) - mean) * (Double(v) - mean) }
            let sd = (ss / Double(max(inside.count, 1))).squareRoot()
            return IntensityMap(lower: mean - sd, upper: mean + sd, clipped: false)
        }
    }
}

/// Order statistics without a full sort.
enum Statistics {
    /// The `p`-th percentile (0…100) with linear interpolation between order statistics (numpy's default,
    /// "linear"). Reorders `values`.
    static func percentile(_ values: UnsafeMutableBufferPointer<Float>, _ p: Double) -> Double {
        let n = values.count
        guard n > 0 else { return 0 }
        let position = min(max(p / 100, 0), 1) * Double(n - 1)
        let k = Int(position.rounded(.down))
        let fraction = position - Double(k)
        let a = Double(select(values, k))
        guard fraction > 0, k + 1 < n else { return a }
        // After selection everything right of k is ≥ the k-th value: the (k+1)-th is their minimum.
        var b = Float.infinity
        for i in (k + 1)..<n { b = min(b, values[i]) }
        return a + fraction * (Double(b) - a)
    }

    /// The k-th smallest value (0-based), by quickselect with median-of-three pivots; reorders `values`.
    static func select(_ values: UnsafeMutableBufferPointer<Float>, _ k: Int) -> Float {
        var lo = 0, hi = values.count - 1
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            // Median of three to the middle.
            if values[mid] < values[lo] { values.swapAt(mid, lo) }
            if values[hi] < values[lo] { values.swapAt(hi, lo) }
            if values[hi] < values[mid] { values.swapAt(hi, mid) }
            let pivot = values[mid]
            var i = lo, j = hi
            while i <= j {
                while values[i] < pivot { i += 1 }
                while values[j] > pivot { j -= 1 }
                if i <= j {
                    values.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return values[k] }
        }
        return values[k]
    }
}
