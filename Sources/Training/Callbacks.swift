import Foundation
import MR2CTSupport
import Reporting

/// Progress after each iteration, through a closure (the tool draws Reporting's `ProgressReporter`).
public final class ProgressCallback: TrainingCallback {
    let update: (StepEvent) -> Void
    public init(_ update: @escaping (StepEvent) -> Void) { self.update = update }
    public func trainingDidStep(_ event: StepEvent) throws { update(event) }
}

/// Validation results and the end of the run as lines for the user.
public final class MessageCallback: TrainingCallback {
    let message: (String) -> Void
    public init(_ message: @escaping (String) -> Void) { self.message = message }
    public func trainingDidValidate(iteration: Int, values: [(name: String, value: Double)], best: Bool) throws {
        message("validation at iteration \(iteration): " + values.map { "\($0.name) \(String(format: "%.4g", $0.value))" }
            .joined(separator: ", ") + (best ? " (best so far)" : ""))
    }
}

/// The model's pictures as `samples/iter_NNNNNNN.png` (Reporting's `ImageGrid`), when the loop asks.
public final class PictureGridCallback<Model: TrainableModel>: TrainingCallback {
    let model: Model
    let directory: URL
    /// The newest grid written.
    public private(set) var latest: URL?

    public init(model: Model, directory: URL) {
        self.model = model
        self.directory = directory
    }

    public func trainingWantsSamples(iteration: Int) throws {
        let url = directory.appendingPathComponent(RunDirectory.setName(iteration: iteration) + ".png")
        try Self.write(model.sampleImages(), to: url)
        latest = url
    }

    /// Writes rows of sample images as one grid (4× magnified up to 64 px, 2× up to 128).
    public static func write(_ rows: [[SampleImage<Model.ImageKey>]], to url: URL) throws {
        let side = rows.first?.first?.width ?? 64
        let grid = rows.map { $0.map { GridImage(width: $0.width, height: $0.height, pixels: $0.pixels, window: $0.window, label: $0.label) } }
        try ImageGrid(rows: grid, scale: side <= 64 ? 4 : (side <= 128 ? 2 : 1), spacing: 4, labelScale: 1).write(to: url)
    }
}

/// `report.html` after every picture grid and at the end: the loss curves from `log.ndjson` (the model's loss keys,
/// in two charts by `splitLosses`), validation values, the latest grid and the configuration.
public final class ReportCallback<Model: TrainableModel>: TrainingCallback {
    let run: RunDirectory
    let title: String
    let configuration: [(key: String, value: String)]
    let grid: PictureGridCallback<Model>?
    /// Which loss curves go in the first chart (the rest in the second).
    let firstChart: Set<Model.LossKey>
    let chartTitles: (String, String)
    let gridCaption: String

    public init(run: RunDirectory, title: String, configuration: [(key: String, value: String)],
                grid: PictureGridCallback<Model>?, firstChart: Set<Model.LossKey>, chartTitles: (String, String),
                gridCaption: String) {
        self.run = run
        self.title = title
        self.configuration = configuration
        self.grid = grid
        self.firstChart = firstChart
        self.chartTitles = chartTitles
        self.gridCaption = gridCaption
    }

    public func trainingWantsSamples(iteration: Int) throws { try write(iteration: iteration) }
    public func trainingDidEnd(_ outcome: LoopOutcome) throws {
        switch outcome {
        case .completed(let i), .stopped(_, let i): try write(iteration: i)
        }
    }

    public func write(iteration: Int) throws {
        let records = try RunLog.read(run.logURL)
        let train = records.filter { $0.kind == .train }
        let x = train.map { Double($0.iteration) }
        func series(_ keys: [Model.LossKey]) -> [ChartSeries] {
            keys.map { key in ChartSeries(name: key.rawValue, x: x, y: train.map { $0.value(key.rawValue) ?? .nan }) }
        }
        let first = Model.LossKey.allCases.filter { firstChart.contains($0) }
        let second = Model.LossKey.allCases.filter { !firstChart.contains($0) }
        var sections: [HTMLReport.Section] = [.init(title: "Losses", blocks: [
            .svg(LineChartSVG(title: chartTitles.0, xLabel: "iteration", yLabel: "value", series: series(first)).render()),
            .svg(LineChartSVG(title: chartTitles.1, xLabel: "iteration", yLabel: "value", series: series(second)).render()),
            .paragraph("Curves are bin means of the per-iteration values in log.ndjson."),
        ])]
        let validation = records.filter { $0.kind == .validation }
        if let names = validation.first?.values.map(\.name).filter({ $0 != "epoch" }) {
            sections.append(.init(title: "Validation", blocks: [
                .table(headers: ["iteration"] + names,
                       rows: validation.map { r in [String(r.iteration)] + names.map { String(format: "%.4g", r.value($0) ?? .nan) } }),
            ]))
        }
        if let latest = grid?.latest {
            sections.append(.init(title: "Latest samples", blocks: [.picture(.file(latest), caption: "\(latest.lastPathComponent): \(gridCaption)")]))
        }
        sections.append(.init(title: "Configuration", blocks: [.keyValueTable(configuration)]))
        let subtitle = "updated \(ISO8601DateFormatter().string(from: Date())) · iteration \(iteration)"
        try HTMLReport(title: title, subtitle: subtitle, sections: sections).write(to: run.reportURL)
    }
}
