import Foundation
import Safetensors

/// Access to the PyTorch golden fixtures (Tests/TestSupport/Fixtures/torch, made by make_goldens.py) and the
/// one error measure every golden test uses.
public enum TorchGoldens {
    /// The fixture folder.
    public static var directory: URL { TestSupport.fixturesDirectory.appendingPathComponent("torch") }

    /// The URL of fixture `name` (e.g. "layers.safetensors").
    public static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// Reads fixture `name`.
    public static func archive(_ name: String) throws -> SafetensorsArchive { try SafetensorsFile.read(url(name)) }

    /// Decodes the JSON metadata entry `key` of `archive` as `T`.
    public static func metadata<T: Decodable>(_ archive: SafetensorsArchive, _ key: String, as type: T.Type = T.self) throws -> T {
        guard let text = archive.metadata[key] else {
            throw SafetensorsError(path: archive.path, reason: "no metadata \"\(key)\"")
        }
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    /// The fixture's "cases" metadata, for parameterised tests; empty when the fixture is missing or unreadable
    /// (each suite's `fixturesArePresent` test then fails, instead of every case).
    public static func cases<T: Decodable>(in fixture: String, as type: [T].Type = [T].self) -> [T] {
        guard let archive = try? archive(fixture), let cases = try? metadata(archive, "cases", as: type) else { return [] }
        return cases
    }

    /// The golden tests' error measure: max |actual − expected| / max |expected| (the largest deviation relative
    /// to the reference tensor's largest magnitude; the absolute deviation when the reference is all zeros).
    /// Infinity when the element counts differ or a value is not finite.
    public static func relativeError(_ actual: [Float], _ expected: [Float]) -> Double {
        guard actual.count == expected.count else { return .infinity }
        var difference = 0.0, scale = 0.0
        for (a, e) in zip(actual, expected) {
            guard a.isFinite else { return .infinity }
            difference = max(difference, abs(Double(a) - Double(e)))
            scale = max(scale, abs(Double(e)))
        }
        return scale > 0 ? difference / scale : difference
    }

    /// max |actual − expected|.
    public static func maximumAbsoluteDifference(_ actual: [Float], _ expected: [Float]) -> Double {
        guard actual.count == expected.count else { return .infinity }
        return zip(actual, expected).reduce(0) { max($0, abs(Double($1.0) - Double($1.1))) }
    }

    /// max |x|.
    public static func maximumMagnitude(_ x: [Float]) -> Double { x.reduce(0) { max($0, abs(Double($1))) } }
}
