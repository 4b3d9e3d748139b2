import Foundation

/// A run configuration as the report's key–value table: every leaf of its JSON under its dotted path
/// ("model.lambdaL1" → "100"), keys sorted.
public enum ConfigurationTable {
    public static func rows<T: Encodable>(_ value: T) -> [(key: String, value: String)] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value), let object = try? JSONSerialization.jsonObject(with: data) else { return [] }
        var out: [(key: String, value: String)] = []
        func walk(_ value: Any, _ path: String) {
            if let dictionary = value as? [String: Any] {
                for key in dictionary.keys.sorted() { walk(dictionary[key]!, path.isEmpty ? key : path + "." + key) }
            } else if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]) {
                out.append((path, String(decoding: data, as: UTF8.self)))
            }
        }
        walk(object, "")
        return out
    }
}
