import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TestSupport
@testable import Reporting

/// Collects elements and attributes of an XML document; `nil` from `parse` means it is not well-formed.
final class ElementCollector: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    var text = ""
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append((name, attributes))
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
    static func parse(_ xml: String) -> ElementCollector? {
        let parser = XMLParser(data: Data(xml.utf8))
        let collector = ElementCollector()
        parser.delegate = collector
        return parser.parse() ? collector : nil
    }
}

@Test func niceTicksFollowHeckbert() {
    #expect(LineChartSVG.niceTicks(min: 0, max: 97, count: 6) == [0, 20, 40, 60, 80, 100])
    let t = LineChartSVG.niceTicks(min: 0.013, max: 0.87, count: 5)
    #expect(t.count == 6 && t.first == 0 && abs(t.last! - 1) < 1e-12 && abs(t[1] - 0.2) < 1e-12)
    #expect(LineChartSVG.niceTicks(min: 5, max: 5, count: 5).contains(5))   // a flat series still gets an axis
    let log = LineChartSVG.logTicks(min: log10(0.01), max: log10(3))
    #expect(log.map(\.label) == ["0.01", "0.1", "1", "10"])
    #expect(LineChartSVG.logTicks(min: 0, max: log10(7)).map(\.label) == ["1", "2", "5", "10"])
    #expect(LineChartSVG.label(20000) == "2e+04" || LineChartSVG.label(20000) == "20000")
    #expect(LineChartSVG.label(0.25) == "0.25")
}

@Test func lineChartIsWellFormedSVGWithPointsInsideThePlot() throws {
    let chart = LineChartSVG(title: "Losses <G & D>", xLabel: "iteration", yLabel: "loss", series: [
        ChartSeries(name: "G_A", x: [0, 1, 2, 3], y: [1, 2, 3, 4]),
        ChartSeries(name: "D_A", x: [0, 1, 2, 3], y: [4, .nan, 2, 1]),
    ])
    let svg = chart.render()
    let doc = try #require(ElementCollector.parse(svg))
    let lines = doc.elements.filter { $0.name == "polyline" }
    #expect(lines.count == 2)
    // Plot area: left 64, top 34 (title), width 640, height 360 - 34 - 62 = 264. x ticks 0…3, y ticks 1…4.
    let first = try #require(lines[0].attributes["points"]).split(separator: " ")
    #expect(first.first == "64.0,298.0")
    #expect(first.last == "704.0,34.0")
    // The NaN point is skipped, not drawn as garbage.
    #expect(try #require(lines[1].attributes["points"]).split(separator: " ").count == 3)
    #expect(!svg.contains("nan") && !svg.contains("inf"))
    #expect(doc.text.contains("Losses <G & D>"))
    #expect(doc.text.contains("G_A") && doc.text.contains("D_A") && doc.text.contains("iteration"))
    #expect(lines[0].attributes["stroke"] != lines[1].attributes["stroke"])
}

@Test func logarithmicChartSkipsNonPositiveValues() throws {
    let chart = LineChartSVG(series: [ChartSeries(name: "L1", values: [10, 1, 0, -1, 0.1])], logarithmicY: true)
    let doc = try #require(ElementCollector.parse(chart.render()))
    let points = try #require(doc.elements.first { $0.name == "polyline" }?.attributes["points"])
    let ys = points.split(separator: " ").map { Double($0.split(separator: ",")[1])! }
    #expect(ys.count == 3)
    // log10 spacing: 10 → 1 → 0.1 are evenly spaced vertically.
    #expect(abs((ys[1] - ys[0]) - (ys[2] - ys[1])) < 0.15)
    #expect(doc.text.contains("0.1") && doc.text.contains("10"))
}

@Test func emptyAndLongSeries() throws {
    let empty = try #require(ElementCollector.parse(LineChartSVG(series: []).render()))
    #expect(empty.text.contains("no data"))
    let n = 100_000
    let long = ChartSeries(name: "loss", values: (0..<n).map { Double($0 % 2) })   // alternating 0, 1
    let svg = LineChartSVG(series: [long], maximumPointsPerSeries: 500).render()
    let doc = try #require(ElementCollector.parse(svg))
    let points = try #require(doc.elements.first { $0.name == "polyline" }?.attributes["points"]).split(separator: " ")
    #expect(points.count == 500)
    // Bin means of an alternating series are all 0.5: a flat line.
    #expect(Set(points.map { $0.split(separator: ",")[1] }).count == 1)
    #expect(svg.utf8.count < 40_000)
}

@Test func movingAverageSmoothsWithShrinkingEnds() {
    let points = [(0.0, 1.0), (1, 2), (2, 6), (3, 3)]
    let smoothed = LineChartSVG.movingAverage(points, window: 3)
    #expect(smoothed.map(\.0) == [0, 1, 2, 3])
    #expect(smoothed.map(\.1) == [1.5, 3, 11.0 / 3, 4.5])
    #expect(LineChartSVG.movingAverage(points, window: 1).map(\.1) == [1, 2, 6, 3])
}

@Test func htmlReportIsSelfContainedAndEmbedsPictures() throws {
    let dir = try TestSupport.makeTemporaryDirectory("report")
    defer { try? FileManager.default.removeItem(at: dir) }
    let png = dir.appendingPathComponent("samples.png")
    try PNGImage.writeGray8([0, 64, 128, 255], width: 2, height: 2, to: png)
    let chart = LineChartSVG(series: [ChartSeries(name: "G", values: [3, 2, 1])]).render()
    let report = HTMLReport(title: "Run <a&b>", subtitle: "iteration 3", sections: [
        .init(title: "Configuration", blocks: [.keyValueTable([("ngf", "32"), ("planes", "axial")])]),
        .init(title: "Losses", blocks: [.svg(chart)]),
        .init(title: "Samples", blocks: [.picture(.file(png), caption: "iteration 3"),
                                         .picture(.file(dir.appendingPathComponent("gone.png")), caption: "x")]),
        .init(title: "Validation", blocks: [.table(headers: ["subject", "MAE (HU)"], rows: [["sub-001", "61.5"], ["mean", "60.2 ± 3.1"]])]),
    ])
    let url = dir.appendingPathComponent("report.html")
    try report.write(to: url)
    let html = try String(contentsOf: url, encoding: .utf8)
    #expect(html.hasPrefix("<!DOCTYPE html>"))
    #expect(html.contains("<title>Run &lt;a&amp;b&gt;</title>"))
    #expect(!html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http"))
    // The PNG is embedded byte for byte.
    let marker = "data:image/png;base64,"
    let start = try #require(html.range(of: marker)).upperBound
    let end = try #require(html[start...].firstIndex(of: "\""))
    #expect(Data(base64Encoded: String(html[start..<end])) == (try Data(contentsOf: png)))
    #expect(html.contains("picture not available: gone.png"))
    #expect(html.contains("<td class=\"num\">61.5</td>") && html.contains("<td class=\"num\">60.2 ± 3.1</td>"))
    #expect(html.contains("<td>sub-001</td>"))
    #expect(html.contains("<polyline"))
}
