import Foundation
import Testing
import Training

/// The loop with a small model whose whole state is a running sum (written as a JSON component): resume from the
/// newest complete set, the log holding each iteration once, stop signals, the NaN guard and rotation.
@Suite struct TrainingLoopTests {
    enum Key: String, TrainingKey { case total, step }
    enum Picture: String, TrainingKey { case value }

    final class SumModel: TrainableModel {
        var total = 0.0
        var nanAt: Int?
        /// The steps taken when the loop asked the model to release its step buffers.
        var releasedAfter: [Int] = []
        private var steps = 0
        func trainStep(_ batch: Int, learningRate: Float) -> StepLosses<Key> {
            steps += 1
            total += Double(batch) * Double(learningRate)
            return StepLosses([.total: batch == nanAt ? .nan : Float(total), .step: Float(batch)])
        }
        var checkpointComponents: [CheckpointComponent] {
            [.json("sum.json", get: { self.total }, set: { self.total = $0 })]
        }
        func sampleImages() -> [[SampleImage<Picture>]] {
            [[SampleImage(key: .value, width: 2, height: 2, pixels: [Float(total), 0, 0, -1])]]
        }
        func releaseStepBuffers() { releasedAfter.append(steps) }
    }

    struct Counting: TrainingData {
        var epochLength: Int { 4 }
        func batch(at iteration: Int) throws -> Int { iteration + 1 }
    }

    final class StopAt: TrainingCallback {
        let iteration: Int, stop: StopSignal
        init(_ iteration: Int, _ stop: StopSignal) { self.iteration = iteration; self.stop = stop }
        func trainingDidStep(_ event: StepEvent) throws { if event.iteration == iteration { stop.request(SIGINT) } }
    }

    func temporaryRun() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loop-\(UUID().uuidString)")
        return url
    }

    func loop(_ url: URL, _ model: SumModel, keep: Int = 0) throws -> TrainingLoop<SumModel, Counting> {
        let run = try RunDirectory(url: url)
        return TrainingLoop(run: run, model: model, data: Counting(), schedule: IterationSchedule(totalIterations: 10, constantIterations: 6),
                            initialLearningRate: 1, options: LoopOptions(checkpointEvery: 4, sampleEvery: 5, keepCheckpoints: keep))
    }

    @Test func stoppedAndResumedRunEqualsAnUninterruptedOne() throws {
        let a = try temporaryRun(), b = try temporaryRun()
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let whole = SumModel()
        let first = try loop(a, whole)
        #expect(try first.resume() == 0)
        #expect(try first.run() == .completed(iteration: 10))

        let stop = StopSignal()
        do {
            let part = try loop(b, SumModel())
            try part.resume()
            part.callbacks = [StopAt(7, stop)]
            #expect(try part.run(stop: stop) == .stopped(signal: SIGINT, iteration: 7))
        }
        // Iterations 8 and 9 of a killed session, never checkpointed: the resumed log drops them.
        let orphan = RunLog(url: b.appendingPathComponent("log.ndjson"))
        try orphan.append(LogRecord(kind: .train, iteration: 8, values: [("total", 99)]))
        let resumedModel = SumModel()
        let resumed = try loop(b, resumedModel)
        #expect(try resumed.resume() == 7)
        #expect(try resumed.run() == .completed(iteration: 10))
        #expect(resumedModel.total.bitPattern == whole.total.bitPattern)
        // Hand-computed: Σ i·lr(i) with lr 1 for i ≤ 6, then 0.8, 0.6, 0.4, 0.2 (1 − k/5).
        let expected = (1...6).reduce(0.0) { $0 + Double($1) } + 7 * Double(Float(0.8)) + 8 * Double(Float(0.6))
            + 9 * Double(Float(0.4)) + 10 * Double(Float(0.2))
        #expect(abs(whole.total - expected) < 1e-9)
        let logA = try RunLog.read(a.appendingPathComponent("log.ndjson")).filter { $0.kind == .train }
        let logB = try RunLog.read(b.appendingPathComponent("log.ndjson")).filter { $0.kind == .train }
        #expect(logA.map(\.iteration) == Array(1...10) && logB.map(\.iteration) == Array(1...10))
        #expect(logA.map { $0.value("total") } == logB.map { $0.value("total") })
        #expect(FileManager.default.fileExists(atPath: b.appendingPathComponent("checkpoints/iter_0000007/sum.json").path))
    }

    /// Scores 5, 3, 4 at iterations 3, 6, 9 (and 10): `best` follows the lowest, each validation is logged.
    struct Scores: TrainingValidator {
        func validate(iteration: Int) throws -> (values: [(name: String, value: Double)], score: Double) {
            let score: Double = [3: 5, 6: 3, 9: 4, 10: 6][iteration] ?? .nan
            return ([("score", score)], score)
        }
    }

    @Test func validationMovesTheBestLinkToTheLowestScore() throws {
        let url = try temporaryRun()
        defer { try? FileManager.default.removeItem(at: url) }
        let run = try RunDirectory(url: url)
        let model = SumModel()
        let l = TrainingLoop(run: run, model: model, data: Counting(), schedule: IterationSchedule(totalIterations: 10),
                             initialLearningRate: 1, options: LoopOptions(checkpointEvery: 100, sampleEvery: 100, validateEvery: 3))
        l.validator = Scores()
        try l.resume()
        _ = try l.run()
        #expect(model.releasedAfter == [3, 6, 9, 10])   // before each validation, and only then
        #expect(run.linkTarget(.best) == "iter_0000006" && run.linkTarget(.latest) == "iter_0000010")
        let records = try RunLog.read(run.logURL)
        #expect(records.filter { $0.kind == .validation }.map { $0.value("score") } == [5, 3, 4, 6])
        #expect(records.filter { $0.kind == .checkpoint }.map(\.iteration) == [3, 6, 10])  // improvements and the end
        #expect(l.state.bestIteration == 6 && l.state.bestScore == 3)
    }

    @Test func nonFiniteLossStopsAndKeepsTheLastGoodSet() throws {
        let url = try temporaryRun()
        defer { try? FileManager.default.removeItem(at: url) }
        let model = SumModel()
        model.nanAt = 6
        let l = try loop(url, model)
        try l.resume()
        do {
            _ = try l.run()
            Issue.record("a NaN loss must stop the run")
        } catch let RunError.nonFiniteLoss(_, loss, value, iteration, kept) {
            #expect(loss == "total" && value.isNaN && iteration == 6 && kept == "iter_0000004")
        }
        #expect(l.run.linkTarget(.latest) == "iter_0000004")
    }

    @Test func rotationKeepsTheNewestSetsAndGridsAreWritten() throws {
        let url = try temporaryRun()
        defer { try? FileManager.default.removeItem(at: url) }
        let model = SumModel()
        let l = try loop(url, model, keep: 2)
        let grid = PictureGridCallback(model: model, directory: l.run.samplesDirectory)
        l.callbacks = [grid]
        try l.resume()
        _ = try l.run()
        #expect(l.run.checkpointSets().map(\.name) == ["iter_0000008", "iter_0000010"])
        let samples = try FileManager.default.contentsOfDirectory(atPath: l.run.samplesDirectory.path).sorted()
        #expect(samples == ["iter_0000005.png", "iter_0000010.png"])
        // A second process cannot open the same run.
        #expect(throws: RunError.locked(path: l.run.url.path)) { _ = try RunDirectory(url: url) }
    }
}
