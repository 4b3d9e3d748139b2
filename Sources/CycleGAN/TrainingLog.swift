import Foundation
import MR2CTSupport

/// One line of a run's `log.ndjson`: a training iteration's losses, or a validation result.
/// Numbers are written in their shortest exact form (a `Float` loss read back as `Float` is bit for bit the same);
/// NaN and ±∞, which JSON cannot hold, are written as `null`.
public struct TrainingLogRecord: Sendable, Equatable {
    /// "train" for an iteration's losses, "validation" for a validation pass.
    public var kind: String
    /// The number of iterations completed when the record was made (1 for the first iteration).
    public var iteration: Int
    /// Named values: `epoch`, `lr`, the reference's loss names (`D_A`, `G_A`, `cycle_A`, `idt_A`, `D_B`, `G_B`,
    /// `cycle_B`, `idt_B`, `struct_A`, `struct_B`), `seconds`; for validation `mae`, `me`, `psnr`, `volumes`. `nil` = not finite.
    public var values: [String: Double?]

    public init(kind: String, iteration: Int, values: [String: Double?]) {
        self.kind = kind
        self.iteration = iteration
        self.values = values
    }

    /// The order keys are written in; others follow sorted by name.
    static let keyOrder = ["epoch", "lr"] + CycleGANLosses.names + ["mae", "me", "psnr", "ssim", "volumes", "seconds"]

    /// The record as one line of JSON (no trailing newline).
    public var jsonLine: String {
        var parts = ["\"kind\":\(Self.quoted(kind))", "\"iteration\":\(iteration)"]
        let known = Self.keyOrder.filter { values[$0] != nil }
        let others = values.keys.filter { !Self.keyOrder.contains($0) }.sorted()
        for key in known + others {
            parts.append("\(Self.quoted(key)):\(Self.number(values[key] ?? nil))")
        }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// Parses one line; nil when it is not a complete record (e.g. a line cut short by a crash).
    public init?(jsonLine line: Substring) {
        guard let data = line.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let kind = object["kind"] as? String,
              let iteration = (object["iteration"] as? NSNumber)?.intValue else { return nil }
        var values: [String: Double?] = [:]
        for (key, value) in object where key != "kind" && key != "iteration" {
            if let number = value as? NSNumber { values[key] = number.doubleValue }
            else if value is NSNull { values[key] = .some(nil) }
        }
        self.init(kind: kind, iteration: iteration, values: values)
    }

    /// A value written so that it reads back exactly: a Float's shortest form when the value is a Float.
    static func number(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        if let single = Float(exactly: value) { return "\(single)" }
        return "\(value)"
    }

    static func quoted(_ string: String) -> String { JSONLiteral.string(string) }
}

/// A run's append-only NDJSON log. Each record is one `write(2)` of one whole line to a file opened with
/// `O_APPEND`, so a crash can at worst leave one cut line at the end, which `read` skips. When a run resumes from a
/// checkpoint, the records after that checkpoint (iterations that will be run again) are removed first, with an
/// atomic rewrite, so the log holds each iteration once.
public final class TrainingLog {
    public let url: URL
    private var descriptor: Int32 = -1

    public init(url: URL) { self.url = url }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// All complete records in the file (none if it does not exist).
    public static func read(_ url: URL) throws -> [TrainingLogRecord] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw TrainingError(path: url.path, reason: "cannot read the training log (\(error.localizedDescription))")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: true).compactMap { TrainingLogRecord(jsonLine: $0) }
    }

    /// Keeps only the records made at or before `iteration` (atomic rewrite) and any cut line is dropped.
    public func truncate(toIteration iteration: Int) throws {
        let kept = try Self.read(url).filter { $0.iteration <= iteration }
        let text = kept.map { $0.jsonLine + "\n" }.joined()
        try AtomicFile.write(Data(text.utf8), to: url)
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
    }

    /// Appends one record as one line.
    public func append(_ record: TrainingLogRecord) throws {
        if descriptor < 0 {
            descriptor = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw TrainingError(path: url.path, reason: String(cString: strerror(errno)))
            }
        }
        let bytes = Array((record.jsonLine + "\n").utf8)
        let written = bytes.withUnsafeBytes { raw in Foundation.write(descriptor, raw.baseAddress!, raw.count) }
        guard written == bytes.count else {
            throw TrainingError(path: url.path, reason: written < 0 ? String(cString: strerror(errno)) : "short write")
        }
    }
}
