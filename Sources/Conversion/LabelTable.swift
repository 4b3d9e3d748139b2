import Foundation
import Evaluation
import MR2CTSupport

/// One tissue label's errors, with its name when a label table gives one.
public struct LabelErrorEntry: Sendable, Hashable {
    public var label: Int
    public var name: String?
    public var tally: LabelErrorTally

    /// {"label":…,"name":…|null,"voxels":…,"mae":…,"me":…} plus `extra` fields before "mae".
    func json(extra: [(String, String)] = []) -> String {
        let fields: [(String, String)] = [("label", "\(label)"), ("name", name.map(JSONText.string) ?? "null"),
                                          ("voxels", "\(tally.voxels)")] + extra + [
            ("mae", tally.mae.map { JSONText.number($0) } ?? "null"),
            ("me", tally.me.map { JSONText.number($0) } ?? "null"),
        ]
        return JSONText.object(fields)
    }
}

/// Label names from a BIDS-style segmentation table (`dseg.tsv`): tab-separated, a header row with the columns
/// `index` and `name` (others ignored), then one row per label.
public enum LabelTable {
    /// The largest table read (a label table of 65 536 long names is far smaller).
    public static let largestFile = 4 << 20

    /// The table's index → name map; a one-line reason naming the file when it is not such a table.
    public static func read(_ url: URL) throws -> [Int: String] {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int else {
            throw EvaluationInputError(path: url.path, reason: "no such file")
        }
        guard size <= largestFile else {
            throw EvaluationInputError(path: url.path, reason: "is \(size) bytes, larger than a label table can be (\(largestFile))")
        }
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw EvaluationInputError(path: url.path, reason: "cannot be read as UTF-8 text")
        }
        do { return try parse(text) } catch { throw EvaluationInputError(path: url.path, reason: "\(error)") }
    }

    /// The index → name map of a table's text; a one-line reason when it is not such a table.
    public static func parse(_ text: String) throws -> [Int: String] {
        let rows = text.split(whereSeparator: \.isNewline).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        guard let header = rows.first, let indexColumn = header.firstIndex(of: "index"),
              let nameColumn = header.firstIndex(of: "name") else {
            throw EvaluationError("not a label table: the first row must name the columns index and name (tab-separated)")
        }
        var names: [Int: String] = [:]
        for (number, row) in rows.enumerated().dropFirst() {   // blank lines are not rows (split omits them)
            guard row.count > max(indexColumn, nameColumn), let index = Int(row[indexColumn]),
                  (0...LabelErrors.largestLabel).contains(index) else {
                throw EvaluationError("row \(number + 1) has no whole-number index in 0…\(LabelErrors.largestLabel) and a name")
            }
            guard names[index] == nil else { throw EvaluationError("label \(index) is named twice (row \(number + 1))") }
            names[index] = row[nameColumn]
        }
        return names
    }
}
