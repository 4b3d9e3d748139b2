import Foundation
import Testing
import Training

@Suite struct ScheduleAndLogTests {
    /// The linear policy with one unit per iteration: 4 constant iterations, then 4 decaying by 1/5 each.
    @Test func scheduleDecaysLinearlyAfterTheConstantPart() {
        let s = IterationSchedule(totalIterations: 8, constantIterations: 4)
        let factors = (0..<8).map { Double(s.learningRate(atIteration: $0, initial: 1)) }
        let expected = [1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2]
        for (a, b) in zip(factors, expected) { #expect(abs(a - b) < 1e-6, "\(factors)") }
        #expect(IterationSchedule(totalIterations: 5).learningRate(atIteration: 4, initial: 2e-4) == 2e-4)
    }

    @Test func logRecordsRoundTripInOrderWithNonFiniteAsNull() throws {
        let record = LogRecord(kind: .train, iteration: 12, values: [("epoch", 1), ("lr", Double(Float(2e-4))),
                                                                       ("Loss_D", Double(Float(1.3921418))), ("x", nil)])
        #expect(record.jsonLine == "{\"kind\":\"train\",\"iteration\":12,\"epoch\":1,\"lr\":0.0002,\"Loss_D\":1.3921418,\"x\":null}")
        let back = try #require(LogRecord(jsonLine: Substring(record.jsonLine)))
        #expect(back.kind == .train && back.iteration == 12 && back.values.map(\.name) == ["epoch", "lr", "Loss_D", "x"])
        // Float values read back bit for bit as Float.
        #expect(back.values.map { $0.value.map { Float($0).bitPattern } } == record.values.map { $0.value.map { Float($0).bitPattern } })
        #expect(LogRecord(jsonLine: "{\"kind\":\"train\",\"iter") == nil)
        #expect(LogRecord(jsonLine: "{\"kind\":\"other\",\"iteration\":1}") == nil)
    }
}
