import Foundation
import MR2CTSupport

// The safetensors format (https://github.com/huggingface/safetensors, "Format"):
//   8 bytes    N, an unsigned little-endian 64-bit integer, the size of the header
//   N bytes    a UTF-8 JSON object {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}},
//              which may be padded with trailing spaces
//   rest       the byte buffer: tensors' raw little-endian data, row-major, at data_offsets relative to its start.
// The buffer must be covered exactly: tensors sorted by offset are contiguous (no holes, no overlaps) and the last
// one ends where the file ends; each tensor's byte length is the product of its shape times its dtype's size.

/// An element type of the safetensors format (the `dtype` field).
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case f64 = "F64", i64 = "I64", u64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .f64, .i64, .u64: 8
        }
    }

    /// Whether `SafetensorsArchive` converts this type to `Float` (F32 exactly; F16, BF16 exactly; F64 rounded).
    public var isConvertibleToFloat: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: true
        default: false
        }
    }
}

/// A malformed, unreadable or unwritable safetensors file: `"<path>: <reason>"` on one line.
public struct SafetensorsError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
}

/// One tensor's entry in a safetensors header.
public struct SafetensorsTensorInfo: Sendable, Hashable {
    public var name: String
    public var dtype: SafetensorsDType
    public var shape: [Int]
    /// Byte range relative to the start of the data buffer (`data_offsets`).
    public var dataOffsets: Range<Int>
    /// Number of elements (1 for a scalar, shape `[]`).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed, validated safetensors file held in memory (read once).
public struct SafetensorsArchive: Sendable {
    /// The file it came from (for error messages).
    public let path: String
    /// The `__metadata__` map (empty if the file has none).
    public let metadata: [String: String]
    /// The tensors in data-offset order.
    public let tensors: [SafetensorsTensorInfo]
    private let index: [String: Int]
    private let bytes: Data
    private let dataStart: Int

    /// The tensor names in data-offset order.
    public var names: [String] { tensors.map(\.name) }

    /// The header entry of the tensor called `name`, or nil.
    public func info(named name: String) -> SafetensorsTensorInfo? { index[name].map { tensors[$0] } }

    /// The tensor called `name` as `Float`s (converted from F16, BF16 or F64), with its shape.
    /// Throws if there is no such tensor or its dtype does not hold floating-point numbers.
    public func tensor(named name: String) throws -> (shape: [Int], values: [Float]) {
        let info = try requireInfo(name)
        var values = [Float](repeating: 0, count: info.elementCount)
        try values.withUnsafeMutableBufferPointer { try copy(info, into: $0) }
        return (info.shape, values)
    }

    /// Copies the tensor called `name` into `destination`, which must hold exactly its element count; avoids
    /// an intermediate array when loading large parameters.
    public func copyFloats(named name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try requireInfo(name)
        guard destination.count == info.elementCount else {
            throw SafetensorsError(path: path, reason: "tensor \(StrictJSON.quoted(name)) has \(info.elementCount) elements, expected \(destination.count)")
        }
        try copy(info, into: destination)
    }

    /// The raw little-endian bytes of the tensor called `name`, whatever its dtype.
    public func rawBytes(named name: String) throws -> Data {
        let info = try requireInfo(name)
        return bytes.subdata(in: (dataStart + info.dataOffsets.lowerBound) ..< (dataStart + info.dataOffsets.upperBound))
    }

    private func requireInfo(_ name: String) throws -> SafetensorsTensorInfo {
        guard let info = info(named: name) else {
            throw SafetensorsError(path: path, reason: "no tensor named \(StrictJSON.quoted(name))")
        }
        return info
    }

    private func copy(_ info: SafetensorsTensorInfo, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard info.dtype.isConvertibleToFloat else {
            throw SafetensorsError(path: path, reason: "tensor \(StrictJSON.quoted(info.name)) has dtype \(info.dtype.rawValue), not a floating-point type (F32, F16, BF16, F64)")
        }
        let count = info.elementCount
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard count > 0, let base = raw.baseAddress, let out = destination.baseAddress else { return }
            let source = base + dataStart + info.dataOffsets.lowerBound
            switch info.dtype {
            case .f32:
                for i in 0 ..< count {
                    out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            case .f64:
                for i in 0 ..< count {
                    out[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            case .f16:
                for i in 0 ..< count {
                    out[i] = halfToFloat(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            case .bf16:
                for i in 0 ..< count {
                    out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
                }
            default:
                break
            }
        }
    }

    fileprivate init(path: String, metadata: [String: String], tensors: [SafetensorsTensorInfo], bytes: Data, dataStart: Int) {
        self.path = path
        self.metadata = metadata
        self.tensors = tensors
        self.bytes = bytes
        self.dataStart = dataStart
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { index[t.name] = i }
        self.index = index
    }
}

/// IEEE 754 binary16 → binary32 (exact: every half is a float), including subnormals, infinities and NaN.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        // Zero or subnormal: mantissa × 2^-24.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
}

/// Reading and writing safetensors files.
public enum SafetensorsFile {
    /// Largest header accepted, as in the reference implementation (100 MB).
    public static let maximumHeaderSize = 100_000_000
    /// Key of the string→string metadata map in the header.
    public static let metadataKey = "__metadata__"

    /// Reads and validates the file at `url`: the header first (a file that is not a valid safetensors file is
    /// refused before its data is read), then the data, once, into memory.
    public static func read(_ url: URL) throws -> SafetensorsArchive {
        let path = url.path
        let data = try readValidatedFile(path)
        return try parse(data, path: path)
    }

    /// Parses and validates safetensors bytes; `path` names them in errors.
    public static func parse(_ data: Data, path: String) throws -> SafetensorsArchive {
        let header = try parseHeader(data, fileSize: data.count, path: path)
        return SafetensorsArchive(path: path, metadata: header.metadata, tensors: header.tensors, bytes: data,
                                  dataStart: header.dataStart)
    }

    /// Validates the header found at the start of `data` for a file of `fileSize` bytes (`data` holds at least
    /// the length word and the header, when the file is that long; the data section need not be there).
    static func parseHeader(_ data: Data, fileSize: Int, path: String) throws
        -> (metadata: [String: String], tensors: [SafetensorsTensorInfo], dataStart: Int) {
        func fail(_ reason: String) -> SafetensorsError { SafetensorsError(path: path, reason: reason) }
        guard fileSize >= 8, data.count >= 8 else {
            throw fail("file is \(fileSize) bytes, too short for the 8-byte header length of a safetensors file")
        }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        if let other = foreignFormat(data) { throw fail("\(other), not a safetensors file") }
        guard headerLength <= UInt64(maximumHeaderSize) else {
            throw fail("header length \(headerLength) exceeds the \(maximumHeaderSize)-byte limit (not a safetensors file?)")
        }
        let n = Int(headerLength)
        guard n <= fileSize - 8 else {
            throw fail("header length \(n) runs beyond the end of the file (\(fileSize) bytes)")
        }
        guard n >= 2 else { throw fail("header length \(n) is too small for a JSON object") }
        let dataStart = 8 + n
        let dataSize = fileSize - dataStart
        guard data.count >= dataStart else { throw fail("file shrank while being read") }

        let root: StrictJSON.Value
        do {
            root = try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> StrictJSON.Value in
                let header = UnsafeRawBufferPointer(rebasing: raw[8 ..< dataStart])
                guard header[0] == UInt8(ascii: "{") else {
                    throw StrictJSON.ParseError(offset: 0, message: "header does not start with '{'")
                }
                return try StrictJSON.parse(header)
            }
        } catch let error as StrictJSON.ParseError {
            throw fail("header is not valid JSON: \(error.message) at header byte \(error.offset)")
        }
        guard case .object(let members) = root else { throw fail("header is not a JSON object") }

        var metadata: [String: String] = [:]
        var tensors: [SafetensorsTensorInfo] = []
        tensors.reserveCapacity(members.count)
        for member in members {
            let name = member.key, value = member.value
            let quotedName = StrictJSON.quoted(name)
            if name == metadataKey {
                guard case .object(let pairs) = value else {
                    throw fail("\(metadataKey) is \(value.kindDescription), not an object of strings")
                }
                for pair in pairs {
                    let key = pair.key, item = pair.value
                    guard case .string(let text) = item else {
                        throw fail("\(metadataKey) entry \(StrictJSON.quoted(key)) is \(item.kindDescription), not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            guard case .object(let fields) = value else {
                throw fail("tensor \(quotedName) is \(value.kindDescription), not an object")
            }
            var dtypeValue: StrictJSON.Value?, shapeValue: StrictJSON.Value?, offsetsValue: StrictJSON.Value?
            for field in fields {
                switch field.key {
                case "dtype": dtypeValue = field.value
                case "shape": shapeValue = field.value
                case "data_offsets": offsetsValue = field.value
                default: break  // unknown fields are ignored, as in the reference implementation
                }
            }
            guard let dtypeValue else { throw fail("tensor \(quotedName) has no dtype") }
            guard let shapeValue else { throw fail("tensor \(quotedName) has no shape") }
            guard let offsetsValue else { throw fail("tensor \(quotedName) has no data_offsets") }
            guard case .string(let dtypeName) = dtypeValue else {
                throw fail("tensor \(quotedName): dtype is \(dtypeValue.kindDescription), not a string")
            }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw fail("tensor \(quotedName): unknown dtype \(StrictJSON.quoted(dtypeName))")
            }
            guard case .array(let dims) = shapeValue else {
                throw fail("tensor \(quotedName): shape is \(shapeValue.kindDescription), not an array")
            }
            var shape: [Int] = []
            shape.reserveCapacity(dims.count)
            var elements = 1
            for dim in dims {
                guard let d = dim.nonNegativeInteger else {
                    let text: String = if case .number(let t) = dim { t } else { dim.kindDescription }
                    throw fail("tensor \(quotedName): shape dimension \(text) is not a non-negative integer")
                }
                shape.append(d)
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, product <= fileSize else {
                    throw fail("tensor \(quotedName): shape has more elements than the file has bytes")
                }
                elements = product
            }
            guard case .array(let offsets) = offsetsValue, offsets.count == 2,
                  let begin = offsets[0].nonNegativeInteger, let end = offsets[1].nonNegativeInteger else {
                throw fail("tensor \(quotedName): data_offsets is not a pair of non-negative integers")
            }
            guard begin <= end else {
                throw fail("tensor \(quotedName): data_offsets [\(begin), \(end)] end before they begin")
            }
            guard end <= dataSize else {
                throw fail("tensor \(quotedName): data_offsets [\(begin), \(end)] lie outside the \(dataSize)-byte data buffer")
            }
            let byteLength = elements * dtype.byteSize  // ≤ fileSize × 8: no overflow
            guard byteLength == end - begin else {
                throw fail("tensor \(quotedName): shape \(shape) of \(dtype.rawValue) needs \(byteLength) bytes but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
            tensors.append(SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin ..< end))
        }

        // Contiguous, non-overlapping, covering the whole buffer.
        tensors.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound) }
        var expected = 0
        var previous: SafetensorsTensorInfo?
        for t in tensors {
            if t.dataOffsets.lowerBound < expected, let previous {
                throw fail("tensors \(StrictJSON.quoted(previous.name)) and \(StrictJSON.quoted(t.name)) overlap (data_offsets [\(previous.dataOffsets.lowerBound), \(previous.dataOffsets.upperBound)] and [\(t.dataOffsets.lowerBound), \(t.dataOffsets.upperBound)])")
            }
            if t.dataOffsets.lowerBound > expected {
                throw fail("hole in the data buffer: bytes \(expected) ..< \(t.dataOffsets.lowerBound) belong to no tensor (before \(StrictJSON.quoted(t.name)))")
            }
            expected = t.dataOffsets.upperBound
            previous = t
        }
        guard expected == dataSize else {
            throw fail("data buffer is \(dataSize) bytes but the tensors cover \(expected) (truncated file or trailing bytes)")
        }
        return (metadata, tensors, dataStart)
    }

    /// Writes F32 tensors, in the order given, with `metadata` as `__metadata__`; atomic (temporary file + rename).
    /// The header is padded with spaces to a multiple of 8 bytes so that the data is aligned, as the reference
    /// writer does. Throws on duplicate or reserved names and on shapes that do not match the values.
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])],
                             metadata: [String: String], to url: URL) throws {
        let data = try encode(tensors, metadata: metadata, path: url.path)
        try AtomicFile.write(data, to: url)
    }

    /// The bytes `write` would write.
    public static func encode(_ tensors: [(name: String, shape: [Int], values: [Float])],
                              metadata: [String: String], path: String = "<memory>") throws -> Data {
        func fail(_ reason: String) -> SafetensorsError { SafetensorsError(path: path, reason: reason) }
        var header = "{"
        var first = true
        if !metadata.isEmpty {
            header += StrictJSON.quoted(metadataKey) + ":{"
            header += metadata.keys.sorted().map { StrictJSON.quoted($0) + ":" + StrictJSON.quoted(metadata[$0]!) }
                .joined(separator: ",")
            header += "}"
            first = false
        }
        var names = Set<String>()
        var offset = 0
        for t in tensors {
            guard !t.name.isEmpty, t.name != metadataKey else { throw fail("cannot write a tensor named \(StrictJSON.quoted(t.name))") }
            guard names.insert(t.name).inserted else { throw fail("duplicate tensor name \(StrictJSON.quoted(t.name))") }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.values.count else {
                throw fail("tensor \(StrictJSON.quoted(t.name)): shape \(t.shape) does not hold \(t.values.count) values")
            }
            let end = offset + 4 * t.values.count
            header += (first ? "" : ",") + StrictJSON.quoted(t.name)
                + ":{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}"
            first = false
            offset = end
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        guard headerBytes.count <= maximumHeaderSize else { throw fail("header would exceed \(maximumHeaderSize) bytes") }

        var data = Data(count: 8 + headerBytes.count + offset)
        data.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) in
            raw.storeBytes(of: UInt64(headerBytes.count).littleEndian, as: UInt64.self)
            headerBytes.withUnsafeBytes { raw.baseAddress!.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            var position = 8 + headerBytes.count
            for t in tensors {
                t.values.withUnsafeBufferPointer { values in
                    for v in values {
                        raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: position, as: UInt32.self)
                        position += 4
                    }
                }
            }
        }
        return data
    }

    /// Reads a regular file with POSIX calls in two steps: the length word and the header first, validated
    /// against the file size, and only then the data section, so that a file that is not a safetensors file (a
    /// NIfTI volume given as a model, say) is refused without reading it all. Every failure is a one-line error.
    /// Files people hand over by mistake, known by their first bytes: gzip (a .nii.gz volume), an uncompressed
    /// NIfTI-1/-2 header (sizeof_hdr 348 or 540, either byte order), a zip archive (a PyTorch .pth). The first
    /// 8 bytes of a safetensors file are a header length whose JSON starts with `{` at byte 8.
    static func foreignFormat(_ data: Data) -> String? {
        let bytes = [UInt8](data.prefix(9))
        guard bytes.count >= 4, bytes.count < 9 || bytes[8] != UInt8(ascii: "{") else { return nil }
        if bytes[0] == 0x1F && bytes[1] == 0x8B { return "gzip-compressed data (a .nii.gz volume?)" }
        if bytes[0] == 0x50 && bytes[1] == 0x4B && bytes[2] == 3 && bytes[3] == 4 {
            return "a zip archive (a PyTorch .pth checkpoint? convert it with Pipelines/convert_pytorch_generator.py)"
        }
        let word = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        if [348, 540].contains(word) || [348, 540].contains(word.byteSwapped) {
            return "a NIfTI volume"
        }
        return nil
    }

    private static func readValidatedFile(_ path: String) throws -> Data {
        func fail(_ reason: String) -> SafetensorsError { SafetensorsError(path: path, reason: reason) }
        // By type before opening: open(2) of a FIFO blocks until a writer comes, a device never ends. O_NONBLOCK
        // keeps a FIFO swapped in after this check from blocking; fstat then refuses it.
        if let problem = FileKind.of(path).problemAsFile(folder: "is a folder, not a safetensors file") {
            throw fail(problem)
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw fail(String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw fail(String(cString: strerror(errno))) }
        if let problem = FileKind.of(descriptor: fd).problemAsFile() { throw fail(problem) }
        let size = Int(info.st_size)

        /// Appends up to `count` bytes read from the file to `data`; stops early at the end of the file.
        func readMore(_ count: Int, into data: inout Data) throws {
            var chunk = Data(count: count)
            let got = chunk.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) -> Int in
                var done = 0
                while done < count {
                    let n = Foundation.read(fd, raw.baseAddress! + done, count - done)
                    if n < 0 { if errno == EINTR { continue }; return -1 }
                    if n == 0 { break }
                    done += n
                }
                return done
            }
            guard got >= 0 else { throw fail(String(cString: strerror(errno))) }
            data.append(chunk.prefix(got))
        }

        var data = Data()
        guard size > 0 else { return data }
        try readMore(min(size, 8), into: &data)
        if data.count == 8 {
            let n = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            if n <= UInt64(maximumHeaderSize), Int(n) <= size - 8 {
                try readMore(Int(n), into: &data)
                _ = try parseHeader(data, fileSize: size, path: path)  // throws before the data is read
            }
        }
        // A valid layout: the whole file is tensor data. Refuse one that cannot fit in memory rather than trap.
        guard UInt64(size) <= ProcessInfo.processInfo.physicalMemory else {
            throw fail("file is \(size) bytes, more than this machine's memory (\(ProcessInfo.processInfo.physicalMemory) bytes)")
        }
        if size > data.count { try readMore(size - data.count, into: &data) }
        return data  // shorter than `size` if the file shrank while being read: parse validates what is there
    }

}
