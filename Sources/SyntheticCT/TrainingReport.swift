import CycleGAN
import Foundation
import NeuralNetwork
import Preprocessing
import Reporting
import Training

/// The run's curves, from `log.ndjson`, for the report.
final class TrainingHistory {
    static let lossNames = CycleGANLosses.names
    /// The names read from the log: the ten terms and semi-supervised runs' `G_sup` (NaN where a run has none).
    static let recordedNames = lossNames + [CycleGANLossKey.supervised.rawValue]
    private(set) var iterations: [Double] = []
    private(set) var losses: [String: [Double]] = [:]
    private(set) var learningRates: [Double] = []
    private(set) var validation: [(iteration: Int, epoch: Int, mae: Double, me: Double, psnr: Double)] = []
    var latestSample: String?

    init(records: [LogRecord]) {
        for name in Self.recordedNames { losses[name] = [] }
        for record in records { append(record) }
    }

    func append(_ record: LogRecord) {
        func value(_ key: String) -> Double { record.value(key) ?? .nan }
        switch record.kind {
        case .train:
            iterations.append(Double(record.iteration))
            learningRates.append(value("lr"))
            for name in Self.recordedNames { losses[name, default: []].append(value(name)) }
        case .validation:
            validation.append((record.iteration, Int(value("epoch").isFinite ? value("epoch") : 0),
                               value(ValidationValue.mae.rawValue), value(ValidationValue.me.rawValue),
                               value(ValidationValue.psnr.rawValue)))
        case .checkpoint: break
        }
    }
}

/// The run's pictures and `report.html`: the latest sample grid (real MR | synthetic CT | reconstructed MR over
/// real CT | synthetic MR | reconstructed CT; CT in the head window W 1500 / L 300 HU; in semi-supervised runs a
/// third row MR | sCT | true CT | error map of the iteration's registered pair, `PairedSampleRow`), loss curves, validation
/// results and the configuration, in one self-contained page (PNG embedded, SVG inline) that opens offline.
struct TrainingReport {
    var configuration: TrainingConfiguration
    var schedule: TrainingSchedule
    var history: TrainingHistory
    var iteration: Int
    var bestIteration: Int?
    var trainingSeconds: Double

    /// Writes the picture grid of a step's visuals (`CycleGANModel.lastVisuals`).
    static func writeGrid(visuals: [CycleGANImageKey: Tensor], preprocessing: PreprocessingConfiguration, to url: URL) throws {
        // CT images are shown in HU (the model's CT map inverted, linear or piecewise), MR as normalised values.
        let ctMap = IntensityMap.ctWindow(preprocessing)
        let ct = IntensityWindow.ctHeadBone
        let mr = IntensityWindow.normalized
        func image(_ key: CycleGANImageKey, _ window: IntensityWindow, _ label: String) -> GridImage? {
            guard var plane = CycleGANModel.centrePlane(visuals[key]) else { return nil }
            if window == ct { plane.values.withUnsafeMutableBufferPointer { ctMap.denormalize($0) } }
            return GridImage(width: plane.width, height: plane.height, pixels: plane.values, window: window, label: label)
        }
        let rows = [
            [image(.realA, mr, "real MR"), image(.fakeB, ct, "synthetic CT"), image(.recA, mr, "reconstructed MR")],
            [image(.realB, ct, "real CT"), image(.fakeA, mr, "synthetic MR"), image(.recB, ct, "reconstructed CT")],
        ].map { $0.compactMap { $0 } }
            + pairRow(visuals: visuals, preprocessing: preprocessing)
        // The images' own side (a --crop-size window, else the slice size) sets the magnification.
        let size = visuals[.realA]?.shape.last ?? preprocessing.sliceSize
        let scale = size <= 64 ? 4 : (size <= 128 ? 2 : 1)
        try ImageGrid(rows: rows, scale: scale, spacing: 4, labelScale: size < 64 ? 1 : 2).write(to: url)
    }

    /// The registered pair's row of a semi-supervised step (none without one).
    static func pairRow(visuals: [CycleGANImageKey: Tensor], preprocessing: PreprocessingConfiguration) -> [[GridImage]] {
        guard let mr = visuals[.pairA], let fake = visuals[.pairFakeB], let ct = visuals[.pairB] else { return [] }
        return [PairedSampleRow.images(mr: mr, syntheticCT: fake, ct: ct, preprocessing: preprocessing).map {
            GridImage(width: $0.width, height: $0.height, pixels: $0.pixels, window: $0.window, label: "pair " + $0.label)
        }]
    }

    func write(to url: URL) throws {
        let total = schedule.totalIterations
        let epochLength = max(configuration.data.epochLength, 1)
        let epochs = (total + epochLength - 1) / epochLength
        let formatter = ISO8601DateFormatter()
        let subtitle = "updated \(formatter.string(from: Date())) · iteration \(iteration) / \(total)"
            + " · epoch \(min(max(1, (iteration + epochLength - 1) / epochLength), epochs)) / \(epochs)"
            + String(format: " · %.1f min of training", trainingSeconds / 60)
        var sections: [HTMLReport.Section] = []

        let x = history.iterations
        let generatorSeries = CycleGANLossKey.allCases.filter { !$0.isDiscriminatorLoss && ($0 != .supervised || configuration.isSemiSupervised) }.map {
            ChartSeries(name: $0.rawValue, x: x, y: history.losses[$0.rawValue] ?? [])
        }
        let discriminatorSeries = CycleGANLossKey.allCases.filter(\.isDiscriminatorLoss).map {
            ChartSeries(name: $0.rawValue, x: x, y: history.losses[$0.rawValue] ?? [])
        }
        sections.append(.init(title: "Losses", blocks: [
            .svg(LineChartSVG(title: "Generator losses (G: adversarial, cycle: λ-weighted L1, idt: identity, struct: MIND structure"
                              + (configuration.isSemiSupervised ? ", G_sup: λ_sup-weighted L1 on the registered pairs)" : ")"),
                              xLabel: "iteration", yLabel: "loss", series: generatorSeries, logarithmicY: true).render()),
            .svg(LineChartSVG(title: "Discriminator losses", xLabel: "iteration", yLabel: "loss",
                              series: discriminatorSeries).render()),
            .svg(LineChartSVG(title: "Learning rate", xLabel: "iteration", yLabel: "lr",
                              series: [ChartSeries(name: "lr", x: x, y: history.learningRates)], height: 220).render()),
            .paragraph("Curves are bin means of the per-iteration values in log.ndjson."),
        ]))

        if !history.validation.isEmpty {
            let rows = history.validation.map { v in
                [String(v.iteration), String(v.epoch), String(format: "%.1f", v.mae), String(format: "%.1f", v.me),
                 String(format: "%.2f", v.psnr), v.iteration == bestIteration ? "best" : ""]
            }
            sections.append(.init(title: "Validation (MR→CT, inside the body mask)", blocks: [
                .svg(LineChartSVG(title: "Validation MAE", xLabel: "iteration", yLabel: "MAE (HU)",
                                  series: [ChartSeries(name: "MAE", x: history.validation.map { Double($0.iteration) },
                                                       y: history.validation.map(\.mae))], height: 260).render()),
                .table(headers: ["iteration", "epoch", "MAE (HU)", "ME (HU)", "PSNR (dB)", ""], rows: rows),
            ]))
        }

        if let sample = history.latestSample {
            let url = url.deletingLastPathComponent().appendingPathComponent("samples").appendingPathComponent(sample)
            sections.append(.init(title: "Latest samples", blocks: [
                .picture(.file(url), caption: "\(sample): real MR | synthetic CT | reconstructed MR (top); "
                    + "real CT | synthetic MR | reconstructed CT (second row); CT window W 1500 / L 300 HU"
                    + (configuration.isSemiSupervised ? "; registered pair: MR | sCT | true CT | |sCT − CT| 0–300 HU (third row; CT −1000…1500 HU)" : "")),
            ]))
        }

        sections.append(.init(title: "Configuration", blocks: [.keyValueTable(Self.flatten(configuration))]))
        try HTMLReport(title: "MR2CT training: \(url.deletingLastPathComponent().lastPathComponent)",
                       subtitle: subtitle, sections: sections).write(to: url)
    }

    /// The configuration's JSON as dotted keys and values (file lists summarised).
    static func flatten(_ configuration: TrainingConfiguration) -> [(key: String, value: String)] {
        guard let data = try? configuration.jsonData(),
              let object = try? JSONSerialization.jsonObject(with: data) else { return [] }
        var out: [(key: String, value: String)] = []
        func walk(_ value: Any, _ path: String) {
            if let dictionary = value as? [String: Any] {
                for key in dictionary.keys.sorted() { walk(dictionary[key]!, path.isEmpty ? key : path + "." + key) }
            } else if let array = value as? [Any], path.hasSuffix("Files") {
                out.append((path, "\(array.count) files: " + array.prefix(6).map { "\($0)" }.joined(separator: ", ")
                    + (array.count > 6 ? ", …" : "")))
            } else if let string = value as? String {
                out.append((path, string))
            } else if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]) {
                out.append((path, String(decoding: data, as: UTF8.self)))
            }
        }
        walk(object, "")
        return out
    }
}

/// The run's picture grid and `report.html` as the loop's callback: both every `sampleEvery` iterations and at the
/// end; when a signal stops the run between two pictures, the report alone (after the checkpoint is saved).
final class SyntheticCTReportCallback: TrainingCallback {
    unowned let session: TrainingSession
    /// The grid written last in this session, and the iterations of this session's last step and report.
    private var latestSample: String?
    private var lastStep: Int?
    private var lastReport: Int?

    init(session: TrainingSession) { self.session = session }

    func trainingDidStep(_ event: StepEvent) throws { lastStep = event.iteration }

    func trainingWantsSamples(iteration: Int) throws {
        let url = session.runFolder.samplesDirectory.appendingPathComponent(RunDirectory.setName(iteration: iteration) + ".png")
        try TrainingReport.writeGrid(visuals: session.gan.lastVisuals, preprocessing: session.configuration.preprocessing, to: url)
        latestSample = url.lastPathComponent
        try writeReport(iteration: iteration)
    }

    func trainingDidEnd(_ outcome: LoopOutcome) throws {
        if case .stopped(_, let iteration) = outcome, lastStep == iteration, lastReport != iteration {
            try writeReport(iteration: iteration)
        }
    }

    func writeReport(iteration: Int) throws {
        let history = TrainingHistory(records: try RunLog.read(session.runFolder.logURL))
        history.latestSample = latestSample
        let state = session.state
        try TrainingReport(configuration: session.configuration, schedule: session.schedule, history: history,
                           iteration: iteration, bestIteration: state.bestIteration, trainingSeconds: state.trainingSeconds)
            .write(to: session.runFolder.reportURL)
        lastReport = iteration
    }
}
