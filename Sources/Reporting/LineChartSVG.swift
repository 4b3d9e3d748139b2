import Foundation

/// One line of a chart: (x, y) points in x order (non-finite points, and non-positive y on a log axis, are skipped).
public struct ChartSeries: Sendable {
    public var name: String
    public var x: [Double]
    public var y: [Double]
    /// A CSS colour; nil picks the next colour of the palette.
    public var color: String?

    public init(name: String, x: [Double], y: [Double], color: String? = nil) {
        self.name = name
        self.x = x
        self.y = y
        self.color = color
    }

    /// A series whose x values are 1, 2, 3, …
    public init(name: String, values: [Double], color: String? = nil) {
        self.init(name: name, x: values.indices.map { Double($0 + 1) }, y: values, color: color)
    }
}

/// A line chart (e.g. loss curves) as a standalone SVG 1.1 string: axes with "nice" ticks (Heckbert, "Nice
/// numbers for graph labels", Graphics Gems 1990), optional logarithmic y axis, a legend, a title.
/// Series longer than `maximumPointsPerSeries` are drawn as the means of equal-count bins (which also smooths
/// noisy per-iteration losses).
public struct LineChartSVG: Sendable {
    public var title: String?
    public var xLabel: String
    public var yLabel: String
    public var series: [ChartSeries]
    public var logarithmicY: Bool
    public var width: Int
    public var height: Int
    public var maximumPointsPerSeries: Int
    /// Centred moving average over this many points before drawing (1 = the raw values), for noisy losses.
    public var smoothing: Int

    /// Colour-blind-friendly palette (Okabe & Ito 2008), then greys.
    public static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442", "#999999"]

    public init(title: String? = nil, xLabel: String = "", yLabel: String = "", series: [ChartSeries],
                logarithmicY: Bool = false, width: Int = 720, height: Int = 360, maximumPointsPerSeries: Int = 1500,
                smoothing: Int = 1) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.logarithmicY = logarithmicY
        self.width = width
        self.height = height
        self.maximumPointsPerSeries = maximumPointsPerSeries
        self.smoothing = smoothing
    }

    /// The chart as an `<svg>` element (embeddable in HTML, or a file on its own).
    public func render() -> String {
        let width = max(200, self.width), height = max(140, self.height)
        let left = 64.0, right = 16.0, top = title == nil ? 16.0 : 34.0
        let legendRows = series.isEmpty ? 0 : 1
        let bottom = 44.0 + Double(legendRows) * 18
        let plotWidth = Double(width) - left - right, plotHeight = Double(height) - top - bottom

        // Clean, decimated points in axis units (log10(y) on a log axis).
        let lines: [(name: String, color: String, points: [(Double, Double)])] = series.enumerated().map { i, s in
            var points: [(Double, Double)] = []
            for (x, y) in zip(s.x, s.y) where x.isFinite && y.isFinite && (!logarithmicY || y > 0) {
                points.append((x, logarithmicY ? log10(y) : y))
            }
            let smoothed = Self.movingAverage(points, window: smoothing)
            return (s.name, s.color ?? Self.palette[i % Self.palette.count], Self.decimate(smoothed, to: maximumPointsPerSeries))
        }
        let all = lines.flatMap(\.points)
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        if let title {
            svg += "<text x=\"\(Self.fmt(Double(width) / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(Self.escape(title))</text>\n"
        }
        svg += "<rect x=\"\(Self.fmt(left))\" y=\"\(Self.fmt(top))\" width=\"\(Self.fmt(plotWidth))\" height=\"\(Self.fmt(plotHeight))\" fill=\"none\" stroke=\"#444\"/>\n"
        guard let xMin = all.map(\.0).min(), let xMax = all.map(\.0).max(),
              let yMin = all.map(\.1).min(), let yMax = all.map(\.1).max() else {
            svg += "<text x=\"\(Self.fmt(left + plotWidth / 2))\" y=\"\(Self.fmt(top + plotHeight / 2))\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n</svg>\n"
            return svg
        }
        let xTicks = Self.niceTicks(min: xMin, max: xMax, count: 6)
        let yTicks: [(value: Double, label: String)] = logarithmicY
            ? Self.logTicks(min: yMin, max: yMax)
            : Self.niceTicks(min: yMin, max: yMax, count: 5).map { ($0, Self.label($0)) }
        let x0: Double = min(xTicks.first ?? xMin, xMin)
        let x1: Double = max(xTicks.last ?? xMax, xMax)
        let y0: Double = min(yTicks.first?.value ?? yMin, yMin)
        let y1: Double = max(yTicks.last?.value ?? yMax, yMax)
        func px(_ x: Double) -> Double { left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * plotHeight }

        // Grid lines and tick labels.
        svg += "<g stroke=\"#e4e4e4\">\n"
        for t in xTicks where t >= x0 && t <= x1 {
            svg += "<line x1=\"\(Self.fmt(px(t)))\" y1=\"\(Self.fmt(top))\" x2=\"\(Self.fmt(px(t)))\" y2=\"\(Self.fmt(top + plotHeight))\"/>\n"
        }
        for t in yTicks where t.value >= y0 && t.value <= y1 {
            svg += "<line x1=\"\(Self.fmt(left))\" y1=\"\(Self.fmt(py(t.value)))\" x2=\"\(Self.fmt(left + plotWidth))\" y2=\"\(Self.fmt(py(t.value)))\"/>\n"
        }
        svg += "</g>\n<g fill=\"#222\">\n"
        for t in xTicks where t >= x0 && t <= x1 {
            svg += "<text x=\"\(Self.fmt(px(t)))\" y=\"\(Self.fmt(top + plotHeight + 14))\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in yTicks where t.value >= y0 && t.value <= y1 {
            svg += "<text x=\"\(Self.fmt(left - 6))\" y=\"\(Self.fmt(py(t.value) + 4))\" text-anchor=\"end\">\(Self.escape(t.label))</text>\n"
        }
        if !xLabel.isEmpty {
            svg += "<text x=\"\(Self.fmt(left + plotWidth / 2))\" y=\"\(Self.fmt(top + plotHeight + 30))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        }
        if !yLabel.isEmpty {
            let cy = top + plotHeight / 2
            svg += "<text x=\"14\" y=\"\(Self.fmt(cy))\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(Self.fmt(cy)))\">\(Self.escape(yLabel + (logarithmicY ? " (log)" : "")))</text>\n"
        }
        svg += "</g>\n"

        // The lines (the axes' loose ticks contain every point, so no clipping is needed).
        svg += "<g fill=\"none\" stroke-width=\"1.5\" stroke-linejoin=\"round\">\n"
        for line in lines where !line.points.isEmpty {
            if line.points.count == 1 {
                let p = line.points[0]
                svg += "<circle cx=\"\(Self.fmt(px(p.0)))\" cy=\"\(Self.fmt(py(p.1)))\" r=\"2.5\" fill=\"\(Self.escape(line.color))\"/>\n"
                continue
            }
            let coordinates = line.points.map { "\(Self.fmt(px($0.0))),\(Self.fmt(py($0.1)))" }.joined(separator: " ")
            svg += "<polyline stroke=\"\(Self.escape(line.color))\" points=\"\(coordinates)\"/>\n"
        }
        svg += "</g>\n"

        // Legend: one row below the x label.
        if !lines.isEmpty {
            var lx = left
            let ly = Double(height) - 12
            svg += "<g>\n"
            for line in lines {
                svg += "<line x1=\"\(Self.fmt(lx))\" y1=\"\(Self.fmt(ly - 4))\" x2=\"\(Self.fmt(lx + 18))\" y2=\"\(Self.fmt(ly - 4))\" stroke=\"\(Self.escape(line.color))\" stroke-width=\"2.5\"/>\n"
                svg += "<text x=\"\(Self.fmt(lx + 22))\" y=\"\(Self.fmt(ly))\" fill=\"#222\">\(Self.escape(line.name))</text>\n"
                lx += 30 + Double(line.name.count) * 6.5
            }
            svg += "</g>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    // MARK: - Helpers (internal for tests)

    /// Centred moving average of the y values over `window` points (shrinking at the ends); x unchanged.
    static func movingAverage(_ points: [(Double, Double)], window: Int) -> [(Double, Double)] {
        guard window > 1, points.count > 1 else { return points }
        var prefix = [0.0]
        prefix.reserveCapacity(points.count + 1)
        for p in points { prefix.append(prefix[prefix.count - 1] + p.1) }
        let half = window / 2
        return points.indices.map { i in
            let lo = max(0, i - half), hi = min(points.count, i - half + window)
            return (points[i].0, (prefix[hi] - prefix[lo]) / Double(hi - lo))
        }
    }

    /// Means of `limit` equal-count bins of `points` (unchanged when it has at most `limit` points).
    static func decimate(_ points: [(Double, Double)], to limit: Int) -> [(Double, Double)] {
        let limit = max(2, limit)
        guard points.count > limit else { return points }
        var out: [(Double, Double)] = []
        out.reserveCapacity(limit)
        for b in 0..<limit {
            let start = b * points.count / limit, end = (b + 1) * points.count / limit
            guard end > start else { continue }
            var sx = 0.0, sy = 0.0
            for p in points[start..<end] { sx += p.0; sy += p.1 }
            out.append((sx / Double(end - start), sy / Double(end - start)))
        }
        return out
    }

    /// The nice number near `x` (1, 2, 5 × 10^k), rounded or not (Heckbert 1990).
    static func niceNumber(_ x: Double, round: Bool) -> Double {
        guard x > 0, x.isFinite else { return 1 }
        let exponent = floor(log10(x))
        let fraction = x / pow(10, exponent)
        let nice: Double
        if round { nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10 }
        else { nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10 }
        return nice * pow(10, exponent)
    }

    /// About `count` nice tick values covering [min, max] ("loose" labelling: the first tick ≤ min, the last ≥ max).
    static func niceTicks(min: Double, max: Double, count: Int) -> [Double] {
        var lo = min, hi = max
        if hi - lo < 1e-12 * Swift.max(1, abs(lo)) {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad; hi += pad
        }
        let range = niceNumber(hi - lo, round: false)
        let step = niceNumber(range / Double(Swift.max(1, count - 1)), round: true)
        let first = Int(floor(lo / step)), last = Int(ceil(hi / step))
        // Multiples of the step, printed at the step's precision so that 25 × 0.2 is 5, not 5.000000000000001.
        let digits = Swift.max(0, Int(-floor(log10(step))))
        return (first...Swift.max(first, Swift.min(last, first + 100))).map { n in
            Double(String(format: "%.\(digits)f", Double(n) * step)) ?? Double(n) * step
        }
    }

    /// Ticks on a log10 axis: every decade (thinned to at most 8), plus 2× and 5× when the range is under
    /// two decades; values are log10 of the tick, labels the tick itself.
    static func logTicks(min: Double, max: Double) -> [(value: Double, label: String)] {
        let lo = floor(min)
        var hi = ceil(max)
        if hi <= lo { hi = lo + 1 }
        let decades = Int(hi - lo)
        let stride = Swift.max(1, Int((Double(decades) / 8).rounded(.up)))
        var ticks: [(Double, String)] = []
        var e = lo
        while e <= hi {
            ticks.append((e, label(pow(10, e))))
            if decades < 2 && e < hi {
                for m in [2.0, 5.0] { ticks.append((e + log10(m), label(m * pow(10, e)))) }
            }
            e += Double(stride)
        }
        return ticks
    }

    /// A short tick label: up to 4 significant digits, exponent form outside [1e-3, 1e6).
    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e6 || a < 1e-3 { return String(format: "%.3g", v) }
        var s = String(format: "%.4g", v)
        if s.contains("e") { s = String(format: "%.0f", v) }
        return s
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
