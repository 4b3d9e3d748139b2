import NIfTI

/// A monotone intensity map onto the network's [−1, 1] and its inverse.
///
/// Linear: `lower` → −1 and `upper` → +1, optionally clipped to [−1, 1]. CT: the HU window (SynthRAD: [−1024, 3000]),
/// clipped. MR percentile scaling: the body's lower/upper percentiles, clipped. MR z-score: mean ∓ one standard
/// deviation, not clipped.
///
/// Piecewise linear (`knots`): intensities `knots[i].intensity` map to `knots[i].normalized`, linearly between
/// knots, clipped at the first and last knot. This is the soft-tissue-aware CT mapping of `mr2ct train --preset sct`:
/// the linear SynthRAD window squeezes all soft tissue (−100…+100 HU) into a band 0.1 wide, so a generator output
/// error of 0.01 is already 20 HU; a few knots give the soft-tissue band a larger share of [−1, 1] at the cost of
/// coarser steps in bone, where a planning system needs far less HU precision (a 50 HU error in cortical bone
/// changes its electron density by about 2 %).
public struct IntensityMap: Codable, Sendable, Hashable {
    public var lower: Double
    public var upper: Double
    public var clipped: Bool
    /// Piecewise-linear knots (strictly increasing in both coordinates); nil for the linear map.
    public var knots: [IntensityKnot]?

    public init(lower: Double, upper: Double, clipped: Bool) {
        self.lower = lower
        // A constant volume would divide by zero: map it to a unit-wide interval instead.
        self.upper = upper > lower ? upper : lower + 1
        self.clipped = clipped
        self.knots = nil
    }

    /// The piecewise-linear map through `knots` (validated by `CTIntensityMapping.validate`), clipped at its ends.
    public init(knots: [IntensityKnot]) {
        self.lower = knots.first?.intensity ?? -1
        self.upper = knots.last?.intensity ?? 1
        self.clipped = true
        self.knots = knots
    }

    /// The CT map of a configuration: its `ctMapping` (the linear `ctWindow`, or soft-tissue knots).
    public static func ctWindow(_ configuration: PreprocessingConfiguration) -> IntensityMap {
        switch configuration.ctMapping {
        case .window:
            return IntensityMap(lower: Double(configuration.ctWindowLower), upper: Double(configuration.ctWindowUpper),
                                clipped: true)
        case let .piecewiseLinear(knots):
            return IntensityMap(knots: knots)
        }
    }

    /// Normalises one value.
    @inlinable public func normalize(_ v: Float) -> Float {
        if let knots { return Self.interpolate(Double(v), knots, from: \.intensity, to: \.normalized) }
        let n = Float((Double(v) - lower) * (2 / (upper - lower)) - 1)
        return clipped ? min(max(n, -1), 1) : n
    }

    /// Maps a normalised value back to intensity units (HU for CT); clipping is not undone.
    @inlinable public func denormalize(_ n: Float) -> Float {
        if let knots { return Self.interpolate(Double(n), knots, from: \.normalized, to: \.intensity) }
        return Float(lower + (Double(n) + 1) * 0.5 * (upper - lower))
    }

    /// Linear interpolation through `knots` from one coordinate to the other, clamped at the end knots.
    @inlinable static func interpolate(_ x: Double, _ knots: [IntensityKnot], from: KeyPath<IntensityKnot, Double>,
                                       to: KeyPath<IntensityKnot, Double>) -> Float {
        let first = knots[0], last = knots[knots.count - 1]
        if x <= first[keyPath: from] { return Float(first[keyPath: to]) }
        if x >= last[keyPath: from] { return Float(last[keyPath: to]) }
        var i = 1
        while x > knots[i][keyPath: from] { i += 1 }
        let a = knots[i - 1], b = knots[i]
        let t = (x - a[keyPath: from]) / (b[keyPath: from] - a[keyPath: from])
        return Float(a[keyPath: to] + t * (b[keyPath: to] - a[keyPath: to]))
    }

    /// Normalises a buffer in place (the hot path: Float arithmetic with precomputed constants).
    public func normalize(_ values: UnsafeMutableBufferPointer<Float>) {
        if let knots {
            Self.apply(values, Self.segments(knots, from: \.intensity, to: \.normalized))
            return
        }
        let scale = Float(2 / (upper - lower)), offset = Float(-1 - lower * 2 / (upper - lower))
        if clipped {
            for i in values.indices { values[i] = min(max(values[i] * scale + offset, -1), 1) }
        } else {
            for i in values.indices { values[i] = values[i] * scale + offset }
        }
    }

    /// Maps a buffer back to intensity units in place.
    public func denormalize(_ values: UnsafeMutableBufferPointer<Float>) {
        if let knots {
            Self.apply(values, Self.segments(knots, from: \.normalized, to: \.intensity))
            return
        }
        let half = (upper - lower) * 0.5
        for i in values.indices { values[i] = Float(lower + (Double(values[i]) + 1) * half) }
    }

    /// Per segment: its upper end in the source coordinate, and the slope and offset of the map on it.
    private static func segments(_ knots: [IntensityKnot], from: KeyPath<IntensityKnot, Double>,
                                 to: KeyPath<IntensityKnot, Double>) -> (low: Float, high: Float, lowOut: Float, highOut: Float,
                                                                       ends: [Float], slopes: [Float], offsets: [Float]) {
        var ends: [Float] = [], slopes: [Float] = [], offsets: [Float] = []
        for i in 1..<knots.count {
            let a = knots[i - 1], b = knots[i]
            let slope = (b[keyPath: to] - a[keyPath: to]) / (b[keyPath: from] - a[keyPath: from])
            ends.append(Float(b[keyPath: from]))
            slopes.append(Float(slope))
            offsets.append(Float(a[keyPath: to] - slope * a[keyPath: from]))
        }
        return (Float(knots[0][keyPath: from]), Float(knots[knots.count - 1][keyPath: from]),
                Float(knots[0][keyPath: to]), Float(knots[knots.count - 1][keyPath: to]), ends, slopes, offsets)
    }

    private static func apply(_ values: UnsafeMutableBufferPointer<Float>,
                              _ s: (low: Float, high: Float, lowOut: Float, highOut: Float,
                                    ends: [Float], slopes: [Float], offsets: [Float])) {
        let last = s.ends.count - 1
        s.ends.withUnsafeBufferPointer { ends in
            s.slopes.withUnsafeBufferPointer { slopes in
                s.offsets.withUnsafeBufferPointer { offsets in
                    for i in values.indices {
                        let v = values[i]
                        if v <= s.low { values[i] = s.lowOut; continue }
                        if v >= s.high { values[i] = s.highOut; continue }
                        var k = 0
                        while k < last && v > ends[k] { k += 1 }
                        values[i] = v * slopes[k] + offsets[k]
                    }
                }
            }
        }
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

/// One knot of a piecewise-linear intensity map: `intensity` (e.g. HU) maps to `normalized` (in [−1, 1]).
public struct IntensityKnot: Codable, Sendable, Hashable {
    public var intensity: Double
    public var normalized: Double
    public init(_ intensity: Double, _ normalized: Double) {
        self.intensity = intensity
        self.normalized = normalized
    }
}

/// How CT intensities (HU) become network values; stored in the model's preprocessing.
public enum CTIntensityMapping: Codable, Sendable, Hashable {
    /// The linear window `ctWindow` clipped and mapped onto [−1, 1] (SynthRAD 2023; the reference default).
    case window
    /// A monotone piecewise-linear map through HU → [−1, 1] knots, clipped at the end knots.
    case piecewiseLinear([IntensityKnot])

    /// The soft-tissue-aware map of `--preset sct`: air and lung −1024…−200 HU onto [−1, −0.6] (0.4 wide), soft
    /// tissue and fat −200…+250 HU onto [−0.6, 0.4] (1.0 wide, 4.4× finer than the linear [−1024, 3000] window) and
    /// bone 250…3000 HU onto [0.4, 1] (0.6 wide, 2.3× coarser).
    public static let softTissue = CTIntensityMapping.piecewiseLinear([
        IntensityKnot(-1024, -1), IntensityKnot(-200, -0.6), IntensityKnot(250, 0.4), IntensityKnot(3000, 1),
    ])

    private enum CodingKeys: String, CodingKey { case kind, knots }

    /// `{"kind": "window"}` or `{"kind": "piecewiseLinear", "knots": [[HU, normalised], …]}`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "window": self = .window
        case "piecewiseLinear":
            let pairs = try c.decode([[Double]].self, forKey: .knots)
            guard pairs.allSatisfy({ $0.count == 2 }) else {
                throw DecodingError.dataCorruptedError(forKey: .knots, in: c, debugDescription: "each knot is [HU, normalised]")
            }
            self = .piecewiseLinear(pairs.map { IntensityKnot($0[0], $0[1]) })
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown CT mapping \"\(other)\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .window: try c.encode("window", forKey: .kind)
        case let .piecewiseLinear(knots):
            try c.encode("piecewiseLinear", forKey: .kind)
            try c.encode(knots.map { [$0.intensity, $0.normalized] }, forKey: .knots)
        }
    }

    /// Throws a reason when the knots are not at least two, finite, strictly increasing in both coordinates,
    /// from −1 to 1.
    public func validate() throws(PreprocessingError) {
        guard case let .piecewiseLinear(knots) = self else { return }
        func fail(_ reason: String) -> PreprocessingError { PreprocessingError(path: "preprocessing configuration", reason: reason) }
        guard knots.count >= 2, knots.count <= 64 else { throw fail("ctMapping needs 2 to 64 knots, not \(knots.count)") }
        guard knots.allSatisfy({ $0.intensity.isFinite && $0.normalized.isFinite }) else { throw fail("ctMapping knots must be finite") }
        for i in 1..<knots.count where !(knots[i].intensity > knots[i - 1].intensity && knots[i].normalized > knots[i - 1].normalized) {
            throw fail("ctMapping knots must increase strictly in HU and in normalised value (knot \(i))")
        }
        guard knots[0].normalized == -1, knots[knots.count - 1].normalized == 1 else {
            throw fail("ctMapping knots must map onto [-1, 1] (first -1, last 1)")
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
