import Foundation
import MR2CTSupport

/// Progress of a long task on standard error, never on standard output (which stays machine-readable).
///
/// On a terminal it redraws one line in place (`\r` + erase-to-end-of-line), at most ~8 times a second:
///
///     train  37% |███████▍            | 3700/10000  4.12 it/s  ETA 25:29  G 1.93 D 0.21
///
/// When standard error is not a terminal (a cluster log, a pipe) it prints plain lines, at most one every
/// `interval` seconds, and always one at the end, so that logs stay short and greppable:
///
///     train: 3700/10000 (37.0%), 4.12 it/s, ETA 25m29s, G 1.93 D 0.21
///
/// The rate is measured from the first `update` (or from `initialCompleted`, for a resumed run) to the latest,
/// so the ETA is the remaining count divided by the average rate. All methods are thread-safe.
public final class ProgressReporter: @unchecked Sendable {
    /// How progress is drawn.
    public enum Style: Sendable {
        /// `.interactive` when standard error is a terminal, `.plain` otherwise.
        case automatic
        /// One line redrawn in place with a bar.
        case interactive
        /// Plain lines at most every `interval` seconds, and at the end.
        case plain
        /// Nothing at all (e.g. `--quiet`).
        case silent
    }

    public let label: String
    public let total: Int?
    public let unit: String
    /// Seconds between plain lines when standard error is not a terminal.
    public let interval: Double

    private let interactive: Bool
    private let silent: Bool
    private let sink: @Sendable (String) -> Void
    private let clock: @Sendable () -> Double
    private let lock = NSLock()

    private var startTime: Double
    private var startCompleted: Int
    private var completed: Int
    private var detail = ""
    private var lastDraw = -Double.infinity
    private var finished = false

    /// A reporter for `total` units of work (nil when unknown), written to standard error.
    public convenience init(label: String, total: Int?, unit: String = "it") {
        self.init(label: label, total: total, unit: unit, style: .automatic)
    }

    /// A reporter with explicit style and plain-line `interval`; `initialCompleted` is the count already done
    /// (a resumed run), so that the rate counts only this session's work. `sink` receives the text that would go
    /// to standard error (for tests and for tools that log elsewhere); `clock` returns seconds (monotonic).
    public init(label: String, total: Int?, unit: String = "it", style: Style, interval: Double = 10,
                initialCompleted: Int = 0,
                sink: (@Sendable (String) -> Void)? = nil,
                clock: (@Sendable () -> Double)? = nil) {
        self.label = label
        self.total = total.map { max(0, $0) }
        self.unit = unit
        self.interval = max(0, interval)
        switch style {
        case .automatic: interactive = isTerminal(STDERR_FILENO); silent = false
        case .interactive: interactive = true; silent = false
        case .plain: interactive = false; silent = false
        case .silent: interactive = false; silent = true
        }
        self.sink = sink ?? { text in FileHandle.standardError.write(Data(text.utf8)) }
        self.clock = clock ?? { ProcessInfo.processInfo.systemUptime }
        startTime = self.clock()
        startCompleted = initialCompleted
        completed = initialCompleted
    }

    /// Records that `completed` units are done, with an optional `detail` (e.g. the current losses).
    public func update(completed: Int, detail: String = "") {
        lock.lock()
        defer { lock.unlock() }
        record(completed: completed, detail: detail)
    }

    /// Adds `count` units to the completed count (for work items finishing on several threads).
    public func advance(by count: Int = 1, detail: String = "") {
        lock.lock()
        defer { lock.unlock() }
        record(completed: completed + count, detail: detail)
    }

    private func record(completed: Int, detail: String) {
        guard !finished else { return }
        self.completed = completed
        self.detail = detail
        let now = clock()
        let minimumGap = interactive ? 0.125 : interval
        if now - lastDraw >= minimumGap {
            draw(now: now, final: false)
        }
    }

    /// Prints a line of its own (a warning, "checkpoint saved", a skipped file) without garbling the bar: on a
    /// terminal the bar is erased, the message printed and the bar redrawn below it. `.silent` prints nothing.
    public func message(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        guard !silent else { return }
        if interactive && !finished && lastDraw > -Double.infinity {
            sink("\r\u{1B}[K" + text + "\n")
            draw(now: clock(), final: false)
        } else {
            sink(text + "\n")
        }
    }

    /// Draws the final state and ends the line. Later calls to `update` and `finish` do nothing.
    public func finish(detail: String = "") {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        if !detail.isEmpty { self.detail = detail }
        draw(now: clock(), final: true)
        finished = true
    }

    // MARK: - Formatting (called with the lock held)

    private func draw(now: Double, final: Bool) {
        lastDraw = now
        guard !silent else { return }
        let elapsed = now - startTime
        let done = completed - startCompleted
        let rate = elapsed > 0 && done > 0 ? Double(done) / elapsed : nil
        if interactive {
            var line = interactiveLine(rate: rate, elapsed: elapsed, final: final)
            let width = Self.terminalColumns()
            if line.count > width - 1 { line = String(line.prefix(max(1, width - 1))) }
            // Carriage return, the line, erase to end of line; a newline only at the end.
            sink("\r" + line + "\u{1B}[K" + (final ? "\n" : ""))
        } else {
            sink(plainLine(rate: rate, elapsed: elapsed, final: final) + "\n")
        }
    }

    private func interactiveLine(rate: Double?, elapsed: Double, final: Bool) -> String {
        var parts = [label]
        if let total, total > 0 {
            let fraction = min(1, max(0, Double(completed) / Double(total)))
            parts.append(String(format: "%3.0f%%", fraction * 100))
            parts.append("|" + Self.bar(fraction: fraction, width: 20) + "|")
            parts.append("\(completed)/\(total)")
        } else {
            parts.append("\(completed) \(unit)")
        }
        parts.append(Self.formatRate(rate, unit: unit))
        if final {
            parts.append("in " + Self.formatClock(elapsed))
        } else if let eta = eta(rate: rate) {
            parts.append("ETA " + Self.formatClock(eta))
        }
        if !detail.isEmpty { parts.append(detail) }
        return parts.joined(separator: "  ")
    }

    private func plainLine(rate: Double?, elapsed: Double, final: Bool) -> String {
        var text = label + ": "
        if let total, total > 0 {
            let percent = min(100, max(0, 100 * Double(completed) / Double(total)))
            text += "\(completed)/\(total) (" + String(format: "%.1f", percent) + "%)"
        } else {
            text += "\(completed) \(unit)"
        }
        var parts = [text, Self.formatRate(rate, unit: unit)]
        if final {
            parts.append("done in " + Self.formatDuration(elapsed))
        } else if let eta = eta(rate: rate) {
            parts.append("ETA " + Self.formatDuration(eta))
        }
        if !detail.isEmpty { parts.append(detail) }
        return parts.joined(separator: ", ")
    }

    private func eta(rate: Double?) -> Double? {
        guard let total, let rate, rate > 0 else { return nil }
        return Double(max(0, total - completed)) / rate
    }

    // MARK: - Helpers

    /// A bar of `width` cells filled to `fraction` with eighth-block characters.
    static func bar(fraction: Double, width: Int) -> String {
        let eighths = Int((min(1, max(0, fraction)) * Double(width * 8)).rounded(.down))
        let full = eighths / 8, partial = eighths % 8
        let partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        var s = String(repeating: "█", count: full)
        if full < width {
            s += partials[partial]
            s += String(repeating: " ", count: width - full - (partial > 0 ? 1 : 0))
        }
        return s
    }

    /// "4.12 it/s", or "12.5 s/it" below one unit a second, or "-- it/s" before anything was measured.
    static func formatRate(_ rate: Double?, unit: String) -> String {
        guard let rate, rate.isFinite, rate > 0 else { return "-- \(unit)/s" }
        if rate >= 100 { return String(format: "%.0f %@/s", rate, unit) }
        if rate >= 1 { return String(format: "%.2f %@/s", rate, unit) }
        return String(format: "%.1f s/%@", 1 / rate, unit)
    }

    /// "05:07" or "1:02:03".
    static func formatClock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "--:--" }
        let s = Int(seconds.rounded())
        let h = s / 3600, m = (s % 3600) / 60, sec = s % 60
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, sec) : String(format: "%02d:%02d", m, sec)
    }

    /// "42s", "5m07s" or "1h02m".
    static func formatDuration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        if seconds < 60 { return String(format: seconds < 10 ? "%.1fs" : "%.0fs", seconds) }
        let s = Int(seconds.rounded())
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }

    /// The terminal width: the TIOCGWINSZ ioctl on standard error, else $COLUMNS, else 80.
    static func terminalColumns() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 0 { return columns }
        return 80
    }
}
