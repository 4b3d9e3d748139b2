import Foundation
import Testing
@testable import Reporting

/// A fake clock and a captured output, shared with the reporter's closures.
final class Capture: @unchecked Sendable {
    private let lock = NSLock()
    private var chunks: [String] = []
    private var time = 0.0
    func write(_ s: String) { lock.lock(); chunks.append(s); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return chunks.joined() }
    var writes: [String] { lock.lock(); defer { lock.unlock() }; return chunks }
    func now() -> Double { lock.lock(); defer { lock.unlock() }; return time }
    func advance(_ seconds: Double) { lock.lock(); time += seconds; lock.unlock() }
}

@Test func plainLinesAreThrottledAndCarryRateAndETA() {
    let c = Capture()
    let p = ProgressReporter(label: "train", total: 100, style: .plain, interval: 10,
                             sink: { c.write($0) }, clock: { c.now() })
    // 1 iteration every 0.25 s (4 it/s); a line at the first update, then at ≥ 10 s intervals.
    for i in 1...60 {
        c.advance(0.25)
        p.update(completed: i, detail: "G 1.00")
    }
    p.finish(detail: "G 0.50")
    let lines = c.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    // Updates at t = 0.25 (first), 10.25 (i = 41), then finish at 15 s: three lines.
    #expect(lines.count == 3)
    #expect(lines[0] == "train: 1/100 (1.0%), 4.00 it/s, ETA 25s, G 1.00")
    #expect(lines[1] == "train: 41/100 (41.0%), 4.00 it/s, ETA 15s, G 1.00")
    #expect(lines[2] == "train: 60/100 (60.0%), 4.00 it/s, done in 15s, G 0.50")
    #expect(!c.text.contains("\r") && !c.text.contains("\u{1B}"))
    // Nothing after finish.
    p.update(completed: 50)
    p.finish()
    #expect(c.text.split(separator: "\n").count == 3)
}

@Test func interactiveLineRedrawsInPlaceWithABar() {
    let c = Capture()
    let p = ProgressReporter(label: "convert", total: 8, unit: "vol", style: .interactive,
                             initialCompleted: 2, sink: { c.write($0) }, clock: { c.now() })
    c.advance(4)
    p.update(completed: 4, detail: "sub-003")        // 2 vol in 4 s = 0.5 vol/s → "2.0 s/vol", ETA 8 s
    c.advance(0.05)
    p.update(completed: 5)                           // within 1/8 s of the last draw: not redrawn
    c.advance(1)
    p.update(completed: 8)
    p.finish()
    let writes = c.writes
    #expect(writes.count == 3)
    #expect(writes.allSatisfy { $0.hasPrefix("\r") && $0.contains("\u{1B}[K") })
    #expect(writes[0].contains(" 50%  |██████████          |  4/8"))
    #expect(writes[0].contains("2.0 s/vol") && writes[0].contains("ETA 00:08") && writes[0].hasSuffix("sub-003\u{1B}[K"))
    #expect(writes[2].contains("100%  |████████████████████|  8/8") && writes[2].hasSuffix("\n"))
    #expect(writes.dropLast().allSatisfy { !$0.contains("\n") })
}

@Test func messagesDoNotGarbleTheBar() {
    let c = Capture()
    let p = ProgressReporter(label: "train", total: 10, style: .interactive, sink: { c.write($0) }, clock: { c.now() })
    p.message("before any bar")
    c.advance(1)
    p.update(completed: 1)
    p.message("checkpoint saved")
    let writes = c.writes
    #expect(writes[0] == "before any bar\n")
    #expect(writes[2] == "\r\u{1B}[Kcheckpoint saved\n")
    #expect(writes[3].hasPrefix("\r") && writes[3].contains("1/10") && !writes[3].contains("\n"))
    let plain = Capture()
    let q = ProgressReporter(label: "convert", total: 2, style: .plain, sink: { plain.write($0) }, clock: { plain.now() })
    q.message("skipped a.nii: not a NIfTI file")
    #expect(plain.text == "skipped a.nii: not a NIfTI file\n")
    let silent = Capture()
    ProgressReporter(label: "x", total: 1, style: .silent, sink: { silent.write($0) }).message("hidden")
    #expect(silent.text.isEmpty)
}

@Test func unknownTotalsShowCountAndRateOnly() {
    let c = Capture()
    let p = ProgressReporter(label: "scan", total: nil, unit: "file", style: .plain, interval: 0,
                             sink: { c.write($0) }, clock: { c.now() })
    c.advance(2)
    p.update(completed: 300)
    #expect(c.text == "scan: 300 file, 150 file/s\n")
}

@Test func silentReporterWritesNothingAndConcurrentAdvancesAllCount() async {
    let c = Capture()
    let p = ProgressReporter(label: "x", total: 1000, style: .silent, sink: { c.write($0) }, clock: { c.now() })
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<8 { group.addTask { for _ in 0..<125 { p.advance() } } }
    }
    p.finish()
    #expect(c.text.isEmpty)
    // The count survived concurrent increments: a plain reporter built the same way shows 1000/1000.
    let c2 = Capture()
    let q = ProgressReporter(label: "y", total: 1000, style: .plain, interval: 1e9, sink: { c2.write($0) }, clock: { c2.now() })
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<8 { group.addTask { for _ in 0..<125 { q.advance() } } }
    }
    q.finish()
    #expect(c2.text.hasSuffix("y: 1000/1000 (100.0%), -- it/s, done in 0.0s\n"))
}

@Test func formattingHelpers() {
    #expect(ProgressReporter.bar(fraction: 0, width: 4) == "    ")
    #expect(ProgressReporter.bar(fraction: 1, width: 4) == "████")
    #expect(ProgressReporter.bar(fraction: 0.5 + 1.0 / 32, width: 4) == "██▏ ")
    #expect(ProgressReporter.formatClock(3723) == "1:02:03")
    #expect(ProgressReporter.formatClock(65) == "01:05")
    #expect(ProgressReporter.formatDuration(3.25) == "3.2s" || ProgressReporter.formatDuration(3.25) == "3.3s")
    #expect(ProgressReporter.formatDuration(307) == "5m07s")
    #expect(ProgressReporter.formatDuration(3720) == "1h02m")
    #expect(ProgressReporter.formatRate(0.25, unit: "it") == "4.0 s/it")
    #expect(ProgressReporter.formatRate(nil, unit: "it") == "-- it/s")
}
