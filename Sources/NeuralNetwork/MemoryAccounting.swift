/// Bytes of float32 tensor storage, each storage counted once: a view made by `Tensor.reshaped(_:)`, a tensor
/// kept by two records (an in-place layer's output is its input) or saved in two slots counts once. For the memory
/// profile of a training step (`mr2ct bench`'s `memory_mb`): which part of the peak resident memory is what.
public struct TensorStorageBytes {
    private var seen: Set<UnsafeMutableRawPointer> = []
    /// The bytes counted so far.
    public private(set) var bytes = 0

    public init() {}

    /// Counts `tensor`'s storage unless it was counted before.
    public mutating func add(_ tensor: Tensor?) {
        guard let tensor, let base = tensor.data.baseAddress else { return }
        if seen.insert(UnsafeMutableRawPointer(base)).inserted { bytes += tensor.count * MemoryLayout<Float>.stride }
    }

    /// Counts what `record` keeps for its backward pass — its output, its saved intermediates and its children's —
    /// but not its input, which belongs to the layer before (or to the caller), nor an output in the workspace's
    /// shared activation buffer (`LayerRecord.sharedOutput`: the workspace's memory).
    public mutating func add(_ record: LayerRecord) {
        if !record.outputIsShared { add(record.output) }
        for tensor in record.saved { add(tensor) }
        for child in record.children { add(child) }
    }

    /// Counts the values and gradients of `parameters`.
    public mutating func add(_ parameters: [Parameter]) {
        for p in parameters { add(p.value); add(p.gradient) }
    }
}
