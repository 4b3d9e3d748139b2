import Foundation
import MR2CTSupport
import Safetensors

/// A checkpoint that does not fit a network: `"<path>: <reason>"` on one line.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
}

/// Parameters ⇄ safetensors, with PyTorch's `state_dict` names ("model.1.weight", …) and float32 data, so that a
/// file written here loads into the reference PyTorch module with `load_state_dict(strict=True)` and the reverse.
extension ParameterContainer {
    /// The parameters, then the buffers (BatchNorm running statistics), as named tensors (`prefix` + PyTorch name).
    public func namedTensors(prefix: String = "") -> [(name: String, shape: [Int], values: [Float])] {
        parameters.map { (prefix + $0.name, $0.value.shape, $0.value.toArray()) }
            + buffers.map { (prefix + $0.name, $0.value.shape, $0.value.toArray()) }
    }

    /// Every tensor a checkpoint of this container holds: the parameters, then the buffers.
    var checkpointTensors: [(name: String, value: Tensor)] {
        parameters.map { ($0.name, $0.value) } + buffers.map { ($0.name, $0.value) }
    }

    /// Writes every parameter as F32 with `metadata` as `__metadata__`; atomic (temporary file + rename).
    public func saveSafetensors(to url: URL, metadata: [String: String]) throws {
        try SafetensorsFile.write(namedTensors(), metadata: metadata, to: url)
    }

    /// Loads every parameter from the file at `url` and returns its `__metadata__`. Strict, like PyTorch's
    /// `load_state_dict(strict=True)`: the file's tensor names must be exactly the parameter names, with the same
    /// shapes; F16, BF16 and F64 are converted; non-finite values are refused. Nothing is changed on failure.
    @discardableResult
    public func loadSafetensors(from url: URL) throws -> [String: String] {
        let archive = try SafetensorsFile.read(url)
        try load(from: archive, prefix: "", requireAllTensorsUsed: true)
        return archive.metadata
    }

    /// Loads the parameters and buffers from the tensors named `prefix` + PyTorch name in `archive` (e.g. prefix
    /// "G_A." in a file holding several networks). Buffers may be integers (PyTorch writes `num_batches_tracked` as
    /// I64). Strict within the prefix: every parameter and buffer must be there with its shape,
    /// and, when `requireAllTensorsUsed`, no other tensor may start with `prefix`. Nothing is changed on failure.
    public func load(from archive: SafetensorsArchive, prefix: String = "", requireAllTensorsUsed: Bool = true) throws {
        func fail(_ reason: String) -> CheckpointError { CheckpointError(path: archive.path, reason: reason) }
        let parameters = checkpointTensors
        let expected = Set(parameters.map { prefix + $0.name })
        var missing: [String] = [], mismatched: [String] = [], wrongType: [String] = []
        for p in parameters {
            let name = prefix + p.name
            guard let info = archive.info(named: name) else { missing.append(name); continue }
            if info.shape != p.value.shape {
                mismatched.append("\(name) has shape \(info.shape), the network needs \(p.value.shape)")
            } else if !info.dtype.isConvertibleToFloat && !(Self.isIntegerBuffer(info.dtype) && buffers.contains { $0.name == p.name }) {
                wrongType.append("\(name) has dtype \(info.dtype.rawValue)")
            }
        }
        let unexpected = requireAllTensorsUsed
            ? archive.names.filter { $0.hasPrefix(prefix) && !expected.contains($0) } : []
        if !(missing.isEmpty && unexpected.isEmpty && mismatched.isEmpty && wrongType.isEmpty) {
            func list(_ items: [String]) -> String {
                let shown = items.prefix(4).joined(separator: ", ")
                return items.count > 4 ? shown + " and \(items.count - 4) more" : shown
            }
            var problems: [String] = []
            if !missing.isEmpty { problems.append("missing \(missing.count) tensor(s): \(list(missing))") }
            if !unexpected.isEmpty { problems.append("unexpected \(unexpected.count) tensor(s): \(list(unexpected))") }
            if !mismatched.isEmpty { problems.append("shape mismatch: \(list(mismatched))") }
            if !wrongType.isEmpty { problems.append("not floating point: \(list(wrongType))") }
            throw fail("does not fit the network (\(self.parameters.count) parameters"
                + (buffers.isEmpty ? "" : ", \(buffers.count) buffers") + "): " + problems.joined(separator: "; "))
        }
        // Decode everything first, so that a failure leaves the network as it was.
        var staged: [[Float]] = []
        staged.reserveCapacity(parameters.count)
        for p in parameters {
            var values = [Float](repeating: 0, count: p.value.count)
            if let info = archive.info(named: prefix + p.name), Self.isIntegerBuffer(info.dtype) {
                values = try Self.integers(archive, prefix + p.name, info.dtype).map { Float($0) }
            } else {
                try values.withUnsafeMutableBufferPointer { try archive.copyFloats(named: prefix + p.name, into: $0) }
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw fail("tensor \(prefix + p.name) holds a non-finite value (\(values[bad]) at element \(bad))")
            }
            staged.append(values)
        }
        for (p, values) in zip(parameters, staged) {
            values.withUnsafeBufferPointer { source in
                guard let from = source.baseAddress, let to = p.value.data.baseAddress else { return }
                to.update(from: from, count: values.count)
            }
        }
    }
}

extension ParameterContainer {
    /// Integer dtypes a buffer may be stored in (PyTorch's `num_batches_tracked` is I64).
    static func isIntegerBuffer(_ dtype: SafetensorsDType) -> Bool { dtype == .i64 || dtype == .i32 }

    /// The little-endian integers of tensor `name`.
    static func integers(_ archive: SafetensorsArchive, _ name: String, _ dtype: SafetensorsDType) throws -> [Int64] {
        let bytes = [UInt8](try archive.rawBytes(named: name))
        let size = dtype.byteSize
        return stride(from: 0, to: bytes.count - size + 1, by: size).map { offset in
            var value: UInt64 = 0
            for b in 0..<size { value |= UInt64(bytes[offset + b]) << (8 * UInt64(b)) }
            return size == 4 ? Int64(Int32(truncatingIfNeeded: value)) : Int64(bitPattern: value)
        }
    }
}
