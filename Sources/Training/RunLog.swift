import Foundation
import MR2CTSupport

/// What a log line records.
public enum LogRecordKind: String, Sendable, CaseIterable {
    /// One iteration's losses, learning rate, epoch and seconds.
    case train
    /// A validation pass's values.
    case validation
    /// A checkpoint set saved (value `best` 1 when it became the best set).
    case checkpoint
}

/// One line of `log.ndjson`: `{"kind":…,"iteration":…,<name>:<value>,…}`, values in the order given; numbers in
/// their shortest exact form (a Float reads back bit for bit), NaN and ±∞ as `null`.
public struct LogRecord: Sendable, Equatable {
    public var kind: LogRecordKind
    /// Iterations completed when the record was made.
    public var iteration: Int
    public var values: [(name: String, value: Double?)]

    public init(kind: LogRecordKind, iteration: Int, values: [(name: String, value: Double?)]) {
        self.kind = kind
        self.iteration = iteration
        self.values = values
    }

    public static func == (a: LogRecord, b: LogRecord) -> Bool {
        a.kind == b.kind && a.iteration == b.iteration && a.values.count == b.values.count
            && zip(a.values, b.values).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func value(_ name: String) -> Double? { values.first { $0.name == name }?.value ?? nil }

    public var jsonLine: String {
        var parts = ["\"kind\":\(JSONLiteral.string(kind.rawValue))", "\"iteration\":\(iteration)"]
        for (name, value) in values { parts.append("\(JSONLiteral.string(name)):\(Self.number(value))") }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// Parses one line; nil for a cut or foreign line. Values keep the file's order.
    public init?(jsonLine line: Substring) {
        guard let data = line.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let kind = (object["kind"] as? String).flatMap(LogRecordKind.init(rawValue:)),
              let iteration = (object["iteration"] as? NSNumber)?.intValue else { return nil }
        // JSONSerialization loses the order: recover it from the text.
        let names = object.keys.filter { $0 != "kind" && $0 != "iteration" }
            .sorted { (line.range(of: "\"\($0)\":")?.lowerBound ?? line.endIndex) < (line.range(of: "\"\($1)\":")?.lowerBound ?? line.endIndex) }
        let values: [(name: String, value: Double?)] = names.map { name in
            ((name, (object[name] as? NSNumber)?.doubleValue))
        }
        self.init(kind: kind, iteration: iteration, values: values)
    }

    static func number(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        if let single = Float(exactly: value) { return "\(single)" }
        return "\(value)"
    }
}

/// The run's append-only NDJSON log: one `write(2)` per line on an `O_APPEND` file (a crash can cut only the last
/// line, which `read` skips); on resume the records after the checkpoint are dropped (atomic rewrite) so each
/// iteration appears once.
public final class RunLog {
    public let url: URL
    private var descriptor: Int32 = -1

    public init(url: URL) { self.url = url }

    deinit { if descriptor >= 0 { close(descriptor) } }

    public static func read(_ url: URL) throws -> [LogRecord] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw RunError.io(path: url.path, reason: "cannot read the training log (\(error.localizedDescription))")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: true).compactMap { LogRecord(jsonLine: $0) }
    }

    public func truncate(toIteration iteration: Int) throws {
        let kept = try Self.read(url).filter { $0.iteration <= iteration }
        try AtomicFile.write(Data(kept.map { $0.jsonLine + "\n" }.joined().utf8), to: url)
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
    }

    public func append(_ record: LogRecord) throws {
        if descriptor < 0 {
            descriptor = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw RunError.io(path: url.path, reason: String(cString: strerror(errno))) }
        }
        let bytes = Array((record.jsonLine + "\n").utf8)
        let written = bytes.withUnsafeBytes { raw in Foundation.write(descriptor, raw.baseAddress!, raw.count) }
        guard written == bytes.count else {
            throw RunError.io(path: url.path, reason: written < 0 ? String(cString: strerror(errno)) : "short write")
        }
    }
}
