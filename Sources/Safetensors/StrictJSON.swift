import MR2CTSupport

/// A small, strict JSON (RFC 8259) parser for safetensors headers.
///
/// Foundation's `JSONSerialization` silently keeps one of two duplicate keys and accepts some non-standard input;
/// a checkpoint header must be unambiguous, so this parser rejects duplicate object keys, unpaired surrogates,
/// control characters in strings, leading zeros, and nesting deeper than `maximumDepth`. It never traps: every
/// problem is a `StrictJSON.ParseError` with the byte offset where it was found.
enum StrictJSON {
    /// A parsed JSON value. Objects keep their members in file order; numbers keep their text.
    enum Value {
        case object([Member])
        case array([Value])
        case string(String)
        case number(String)
        case bool(Bool)
        case null

        /// A short name of the value's kind, for error messages ("an object", "a string", …).
        var kindDescription: String {
            switch self {
            case .object: "an object"
            case .array: "an array"
            case .string: "a string"
            case .number: "a number"
            case .bool: "a boolean"
            case .null: "null"
            }
        }

        /// The value as a non-negative integer (JSON integer syntax, no fraction or exponent), or nil.
        var nonNegativeInteger: Int? {
            guard case .number(let text) = self, !text.isEmpty else { return nil }
            var result = 0
            for byte in text.utf8 {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                let (m, o1) = result.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                if o1 || o2 { return nil }
                result = a
            }
            return result
        }
    }

    /// One `"key": value` member of an object.
    struct Member {
        var key: String
        var value: Value
    }

    struct ParseError: Error {
        var offset: Int
        var message: String
    }

    /// Deepest nesting accepted; safetensors headers need 3 levels.
    static let maximumDepth = 64

    /// Parses exactly one JSON value surrounded by optional whitespace.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(ParseError) -> Value {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.position != bytes.count {
            throw ParseError(offset: parser.position, message: "trailing characters after the JSON value")
        }
        return value
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        var atEnd: Bool { position >= bytes.count }
        var current: UInt8 { bytes[position] }

        mutating func skipWhitespace() {
            while !atEnd {
                switch current {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }

        func error(_ message: String) -> ParseError { ParseError(offset: position, message: message) }

        func unexpected() -> ParseError {
            if atEnd { return error("unexpected end of header") }
            let byte = current
            if byte >= 0x20 && byte < 0x7F {
                return error("unexpected character '\(Character(Unicode.Scalar(byte)))'")
            }
            return error("unexpected byte 0x\(String(byte, radix: 16))")
        }

        mutating func parseValue(depth: Int) throws(ParseError) -> Value {
            guard depth < StrictJSON.maximumDepth else { throw error("nesting deeper than \(StrictJSON.maximumDepth)") }
            guard !atEnd else { throw unexpected() }
            switch current {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return .number(try parseNumber())
            default: throw unexpected()
            }
        }

        mutating func literal(_ word: String) throws(ParseError) {
            let utf8 = Array(word.utf8)
            let count = utf8.count
            guard bytes.count - position >= count else { throw error("unexpected end of header") }
            for i in 0 ..< count where bytes[position + i] != utf8[i] {
                throw unexpected()
            }
            position += count
        }

        mutating func parseObject(depth: Int) throws(ParseError) -> Value {
            position += 1  // {
            var members: [Member] = []
            var seen = Set<String>()
            skipWhitespace()
            if !atEnd && current == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard !atEnd, current == UInt8(ascii: "\"") else { throw unexpected() }
                let keyOffset = position
                let key = try parseString()
                guard seen.insert(key).inserted else {
                    throw ParseError(offset: keyOffset, message: "duplicate key \(StrictJSON.quoted(key))")
                }
                skipWhitespace()
                guard !atEnd, current == UInt8(ascii: ":") else { throw unexpected() }
                position += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                members.append(Member(key: key, value: value))
                skipWhitespace()
                guard !atEnd else { throw unexpected() }
                if current == UInt8(ascii: ",") { position += 1; continue }
                if current == UInt8(ascii: "}") { position += 1; return .object(members) }
                throw unexpected()
            }
        }

        mutating func parseArray(depth: Int) throws(ParseError) -> Value {
            position += 1  // [
            var elements: [Value] = []
            skipWhitespace()
            if !atEnd && current == UInt8(ascii: "]") { position += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard !atEnd else { throw unexpected() }
                if current == UInt8(ascii: ",") { position += 1; continue }
                if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
                throw unexpected()
            }
        }

        mutating func parseNumber() throws(ParseError) -> String {
            let start = position
            if current == UInt8(ascii: "-") { position += 1 }
            func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
            guard !atEnd, isDigit(current) else { throw unexpected() }
            if current == UInt8(ascii: "0") {
                position += 1
                if !atEnd && isDigit(current) { throw error("number with a leading zero") }
            } else {
                while !atEnd && isDigit(current) { position += 1 }
            }
            if !atEnd && current == UInt8(ascii: ".") {
                position += 1
                guard !atEnd, isDigit(current) else { throw unexpected() }
                while !atEnd && isDigit(current) { position += 1 }
            }
            if !atEnd && (current == UInt8(ascii: "e") || current == UInt8(ascii: "E")) {
                position += 1
                if !atEnd && (current == UInt8(ascii: "+") || current == UInt8(ascii: "-")) { position += 1 }
                guard !atEnd, isDigit(current) else { throw unexpected() }
                while !atEnd && isDigit(current) { position += 1 }
            }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< position]), as: UTF8.self)
        }

        mutating func hexQuad() throws(ParseError) -> UInt32 {
            guard bytes.count - position >= 4 else { throw error("unexpected end of header") }
            var value: UInt32 = 0
            for _ in 0 ..< 4 {
                let b = current
                let digit: UInt32
                switch b {
                case UInt8(ascii: "0") ... UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
                case UInt8(ascii: "a") ... UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A") ... UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
                default: throw error("bad \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }

        mutating func parseString() throws(ParseError) -> String {
            position += 1  // opening quote
            var utf8: [UInt8] = []
            while true {
                guard !atEnd else { throw error("unterminated string") }
                let b = current
                switch b {
                case UInt8(ascii: "\""):
                    position += 1
                    guard let string = String(validatingUTF8Bytes: utf8) else {
                        throw error("string is not valid UTF-8")
                    }
                    return string
                case UInt8(ascii: "\\"):
                    position += 1
                    guard !atEnd else { throw error("unterminated string") }
                    let escape = current
                    position += 1
                    switch escape {
                    case UInt8(ascii: "\""): utf8.append(0x22)
                    case UInt8(ascii: "\\"): utf8.append(0x5C)
                    case UInt8(ascii: "/"): utf8.append(0x2F)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0C)
                    case UInt8(ascii: "n"): utf8.append(0x0A)
                    case UInt8(ascii: "r"): utf8.append(0x0D)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hexQuad()
                        if (0xD800 ... 0xDBFF).contains(scalar) {
                            guard bytes.count - position >= 6, bytes[position] == UInt8(ascii: "\\"),
                                  bytes[position + 1] == UInt8(ascii: "u") else {
                                throw error("unpaired surrogate in \\u escape")
                            }
                            position += 2
                            let low = try hexQuad()
                            guard (0xDC00 ... 0xDFFF).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00 ... 0xDFFF).contains(scalar) {
                            throw error("unpaired surrogate in \\u escape")
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw error("bad \\u escape") }
                        utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
                    default:
                        position -= 1
                        throw error("bad escape sequence")
                    }
                case 0x00 ..< 0x20:
                    throw error("control character in string")
                default:
                    utf8.append(b)
                    position += 1
                }
            }
        }
    }

    /// `text` as a JSON string literal (quotes added, `"`, `\` and control characters escaped).
    static func quoted(_ text: String) -> String { JSONLiteral.string(text) }
}

extension String {
    /// The string these bytes encode in UTF-8, or nil when they are not valid UTF-8.
    init?(validatingUTF8Bytes bytes: [UInt8]) {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var scalars = String.UnicodeScalarView()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): scalars.append(scalar)
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self = String(scalars)
    }
}
