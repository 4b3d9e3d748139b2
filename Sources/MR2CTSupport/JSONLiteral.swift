import Foundation

/// JSON literals for hand-assembled NDJSON lines, whose field order JSONEncoder does not promise (RFC 8259 §7, §6).
public enum JSONLiteral {
    /// `text` as a JSON string: quoted, with `"`, `\` and control characters escaped.
    public static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A finite number with at most `fractionDigits` decimals and no trailing zeros, or `null` (JSON has no NaN
    /// or infinity).
    public static func number(_ x: Double, fractionDigits: Int = 6) -> String {
        guard x.isFinite else { return "null" }
        var text = String(format: "%.\(fractionDigits)f", x)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text == "-0" ? "0" : text
    }
}
