import Foundation
import NIfTI
import VolumeIO

/// One entry of a conversion's input list: a volume to convert (a NIfTI file or a DICOM series), or an input that
/// could not be expanded (a folder that cannot be listed or holds no volume, a refused series), which is reported
/// as a failed item. The same entry as every command's input reader lists (`VolumeEntry`), ordered by path.
public typealias ConversionItem = VolumeEntry

extension VolumeEntry: Comparable {
    public static func < (a: VolumeEntry, b: VolumeEntry) -> Bool { a.path < b.path }
}

/// Turns command-line inputs into the sorted, de-duplicated list of volumes to convert.
public enum ConversionInputs {
    /// Files as given; folders as their volumes (`VolumeSource.entries`: NIfTI files, not recursive, and the DICOM
    /// series in the folder and its immediate subfolders; sorted, hidden files skipped; a refused series is an item
    /// with its problem); a DICOM series as FOLDER or FOLDER#SERIES; `-` as the
    /// paths read from `standardInput` (one per line; blank lines and lines starting with `#` ignored, and each
    /// line may itself be a folder). Relative paths are resolved against the current directory. The result is
    /// sorted by absolute path and de-duplicated, so that every process given the same inputs sees the same list.
    public static func expand(_ arguments: [String], standardInput: () -> [String] = ConversionInputs.readLines)
        -> [ConversionItem] {
        var paths: [String] = []
        for argument in arguments {
            if argument == "-" {
                for line in standardInput() {
                    let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                    if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                    paths.append(trimmed)
                }
            } else {
                paths.append(argument)
            }
        }
        var items = Set<ConversionItem>()
        for path in paths {
            let url = URL(fileURLWithPath: path).standardizedFileURL
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
                do {
                    let entries = try VolumeSource.entries(in: url)
                    if entries.isEmpty {
                        items.insert(ConversionItem(path: url.path, problem: "folder holds no NIfTI volume (.nii, .nii.gz, .hdr) or DICOM series"))
                    }
                    for entry in entries { items.insert(entry) }
                } catch {
                    items.insert(ConversionItem(path: url.path, problem: "cannot list folder"))
                }
            } else {
                // A missing or unreadable file is reported when it is converted, like any other bad file.
                items.insert(ConversionItem(path: url.path))
            }
        }
        // A file named twice (as itself and through its folder) is one item; a file and a problem for the same
        // path cannot both occur.
        return items.sorted()
    }

    /// The lines of standard input, read to its end.
    public static func readLines() -> [String] {
        var lines: [String] = []
        while let line = Swift.readLine(strippingNewline: true) { lines.append(line) }
        return lines
    }
}

/// The I-th of N deterministic parts of a list: the items at positions p with p mod N = I (round robin, so that
/// parts differ in size by at most one and sorted names spread evenly). Over I = 0 … N−1 the parts are disjoint
/// and cover the list, which lets N processes (a Slurm job array, GNU parallel, xargs -P) share one folder.
public struct Shard: Hashable, Sendable, CustomStringConvertible {
    /// 0-based part index, 0 ≤ index < count.
    public var index: Int
    /// The number of parts.
    public var count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, (0..<count).contains(index) else {
            throw ShardError(text: "\(index)/\(count)")
        }
        self.index = index
        self.count = count
    }

    /// Parses "I/N", e.g. "0/4" … "3/4".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2,
              let i = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let n = Int(parts[1].trimmingCharacters(in: .whitespaces)) else { throw ShardError(text: text) }
        try self.init(index: i, count: n)
    }

    /// This shard's part of `items`, in order.
    public func select<T>(_ items: [T]) -> [T] {
        items.enumerated().filter { $0.offset % count == index }.map(\.element)
    }

    public var description: String { "\(index)/\(count)" }
}

/// A `--shard` value that is not "I/N" with 0 ≤ I < N.
public struct ShardError: Error, CustomStringConvertible, Sendable {
    public var text: String
    public var description: String { "shard \"\(text)\" must be I/N with 0 <= I < N (e.g. 0/4 … 3/4)" }
}

/// Output file names: a pattern in which `{stem}` is the input's name without its volume suffix
/// (default `{stem}_sct.nii.gz`). The suffix chooses the format (.nii or .nii.gz).
public struct OutputNaming: Hashable, Sendable {
    public var pattern: String

    public static let defaultPattern = "{stem}_sct.nii.gz"

    /// The default naming, `{stem}_sct.nii.gz`.
    public static let standard = OutputNaming(validated: defaultPattern)

    private init(validated pattern: String) { self.pattern = pattern }

    public init(pattern: String = OutputNaming.defaultPattern) throws {
        guard pattern.contains("{stem}") else {
            throw OutputNamingError(pattern: pattern, reason: "must contain {stem}, or every output would get the same name")
        }
        guard !pattern.contains("/") else {
            throw OutputNamingError(pattern: pattern, reason: "is a file name and cannot contain '/' (use -o for the folder)")
        }
        let lower = pattern.lowercased()
        guard lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz") else {
            throw OutputNamingError(pattern: pattern, reason: "must end in .nii or .nii.gz")
        }
        self.pattern = pattern
    }

    /// The output file name for `input` (a DICOM series' stem is its folder's name, `VolumeSource.stem`).
    public func name(for input: URL) -> String {
        pattern.replacingOccurrences(of: "{stem}", with: VolumeSource.stem(of: input))
    }
}

/// An `--name` pattern that cannot name outputs.
public struct OutputNamingError: Error, CustomStringConvertible, Sendable {
    public var pattern: String
    public var reason: String
    public var description: String { "output name pattern \"\(pattern)\" \(reason)" }
}
