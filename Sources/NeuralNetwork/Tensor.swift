import Foundation

/// A float32 tensor, contiguous in row-major NCHW order, on a 64-byte-aligned buffer.
///
/// The buffer is reached through `data` (an unsafe buffer pointer) so that kernels run without bounds or
/// exclusivity checks. A tensor made by `reshaped(_:)` shares its storage with the original.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutableBufferPointer<Float>
    private let storageOwner: Tensor?
    private let ownsStorage: Bool
    /// Bytes of an anonymous mapping holding the storage (`init(zeroPagesWithShape:)`), 0 for the allocator's.
    private let mappedBytes: Int

    /// A tensor of zeros.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        self.shape = shape
        count = shape.reduce(1, *)
        data = UnsafeMutableBufferPointer(start: Self.allocateZeros(count), count: count)
        storageOwner = nil
        ownsStorage = true
        mappedBytes = 0
    }

    /// A tensor of zeros whose storage takes no memory until it is written: a private anonymous mapping (`mmap(2)`:
    /// the kernel maps every page to the shared zero page and commits a page on its first write), page-aligned.
    /// For buffers that are often never written, such as a parameter's gradient in a model that is only run
    /// forward (conversion): `init(shape:)` writes its zeros and so makes every page resident. Below
    /// `zeroPagesMinimumBytes`, or if the mapping fails, it is `init(shape:)`.
    public init(zeroPagesWithShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        let count = shape.reduce(1, *)
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let mapped = bytes >= Self.zeroPagesMinimumBytes
            ? mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : nil
        self.shape = shape
        self.count = count
        storageOwner = nil
        ownsStorage = true
        if let mapped, mapped != MAP_FAILED {
            data = UnsafeMutableBufferPointer(start: mapped.bindMemory(to: Float.self, capacity: max(count, 1)), count: count)
            mappedBytes = bytes
        } else {
            data = UnsafeMutableBufferPointer(start: Self.allocateZeros(count), count: count)
            mappedBytes = 0
        }
    }

    /// Zeroed, 64-byte-aligned storage from the allocator for `count` floats (at least one).
    private static func allocateZeros(_ count: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        let base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
        return base
    }

    /// The smallest storage `init(zeroPagesWithShape:)` maps (smaller buffers share pages with others anyway).
    public static let zeroPagesMinimumBytes = 64 << 10

    /// A tensor holding `values` (row-major; `values.count` must equal the product of `shape`).
    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(values.count == count, "Tensor: \(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { src in
            if count > 0 { data.baseAddress!.update(from: src.baseAddress!, count: count) }
        }
    }

    private init(shape: [Int], sharing other: Tensor) {
        self.shape = shape
        count = shape.reduce(1, *)
        precondition(count == other.count, "Tensor.reshaped: \(other.shape) -> \(shape) changes the element count")
        data = other.data
        storageOwner = other.storageOwner ?? other
        ownsStorage = false
        mappedBytes = 0
    }

    /// A tensor of `shape` on the first elements of `base`'s storage (at most `base.count`), which it keeps alive:
    /// `Workspace.sharedActivation(shape:)`'s views of one buffer.
    package init(prefixOf base: Tensor, shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        precondition(count <= base.count, "Tensor(prefixOf:): \(shape) does not fit in \(base.shape)")
        data = UnsafeMutableBufferPointer(start: base.data.baseAddress, count: count)
        storageOwner = base.storageOwner ?? base
        ownsStorage = false
        mappedBytes = 0
    }

    deinit {
        guard ownsStorage else { return }
        if mappedBytes > 0 {
            munmap(UnsafeMutableRawPointer(data.baseAddress!), mappedBytes)
        } else {
            UnsafeMutableRawPointer(data.baseAddress!).deallocate()
        }
    }

    /// The same storage seen with another shape of the same element count.
    public func reshaped(_ shape: [Int]) -> Tensor { Tensor(shape: shape, sharing: self) }

    /// The values, row-major.
    public func toArray() -> [Float] { Array(data) }

    /// A deep copy.
    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        if count > 0 { t.data.baseAddress!.update(from: data.baseAddress!, count: count) }
        return t
    }

    /// Copies the values of `other` (same element count) into this tensor.
    public func assign(from other: Tensor) {
        precondition(other.count == count, "Tensor.assign: \(other.shape) into \(shape)")
        if count > 0 { data.baseAddress!.update(from: other.data.baseAddress!, count: count) }
    }

    /// Sets every element to `value`.
    public func fill(_ value: Float) {
        if count > 0 { data.baseAddress!.update(repeating: value, count: count) }
    }

    @inline(__always) package var pointer: UnsafeMutablePointer<Float> { data.baseAddress! }
}

/// A trainable tensor with its gradient. Its `name` is the PyTorch `state_dict` key (e.g. `model.1.weight`).
/// The gradient's storage is committed only when it is first written (`Tensor(zeroPagesWithShape:)`), so a
/// network that is only run forward (conversion, `mr2ct info`) holds no gradient memory: 43 MB less for a
/// 256² ngf-64 ResNet generator.
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let value: Tensor
    public let gradient: Tensor

    public init(name: String, shape: [Int]) {
        self.name = name
        value = Tensor(shape: shape)
        gradient = Tensor(zeroPagesWithShape: shape)
    }
}

/// A module whose trainable parameters are listed in PyTorch `state_dict` order, with PyTorch's names.
public protocol ParameterContainer: AnyObject {
    var parameters: [Parameter] { get }
    /// Non-trainable tensors saved and loaded with the parameters (PyTorch buffers), in state_dict order.
    var buffers: [Buffer] { get }
}

/// A non-trainable tensor of a module that belongs in its checkpoint (PyTorch `register_buffer`), e.g. BatchNorm's
/// `running_mean`, `running_var` and `num_batches_tracked` (an integer count, kept as a float scalar: exact to 2²⁴,
/// written as F32 and read from PyTorch's I64 as well). `name` is the PyTorch state_dict key.
public final class Buffer: @unchecked Sendable {
    public let name: String
    public let value: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
    }
}

extension ParameterContainer {
    /// Sets every parameter gradient to zero.
    public func zeroGradients() { for p in parameters { p.gradient.fill(0) } }

    /// The number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }
}
