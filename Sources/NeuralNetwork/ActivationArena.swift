import Foundation

/// The activation tensors of inference passes, reused from pass to pass so that a pass holds only the feature maps
/// that are alive at once (a training pass keeps every layer's output in its `LayerRecord` for backward; an
/// inference pass needs a layer's output only until the next layer has read it).
///
/// An arena belongs to one inference context (`SequentialNetwork.infer` keeps one per context of its pool) and is
/// used by one thread at a time. Records made with `LayerRecord(arena:)` take their outputs from it
/// (`LayerRecord.outputTensor(shape:)`), save nothing for a backward pass and let layers work in place.
///
/// **Lifetime rule.** A tensor taken in a pass is alive until it is given back — `Sequential` gives a layer's input
/// back as soon as that layer has produced a tensor with other storage (never its own input, which belongs to its
/// caller, e.g. the residual block that adds it back); `ResidualBlock` and the U-Net skip give their branch back
/// once it is added or concatenated — and at the latest until the arena's next pass begins (`beginPass` takes every
/// tensor back). The output of a pass is therefore valid only until the next pass: copy it first.
///
/// Free tensors are kept per shape, so after the first pass at an input shape a pass allocates nothing. When a
/// pass asks for a shape no free tensor has, the free tensors of the shapes not asked for in that pass are released
/// first (the input shape changed, e.g. a volume's last, smaller batch): the arena then holds one shape set, not
/// the sum of every set seen.
public final class ActivationArena: @unchecked Sendable {
    private var free: [[Int]: [Tensor]] = [:]
    /// The tensors taken and not given back in this pass.
    private var taken: [ObjectIdentifier: Tensor] = [:]
    /// The pass in which each shape was last asked for.
    private var lastAsked: [[Int]: Int] = [:]
    private var pass = 0
    private var bytesTaken = 0

    /// Bytes of all tensors the arena holds, free and taken.
    public private(set) var byteCount = 0
    /// The most bytes taken at once during the current (or last) pass: the pass's live activations at their peak.
    public private(set) var peakBytesTaken = 0
    /// Tensors allocated since the arena was made (constant once the pass shapes repeat).
    public private(set) var allocations = 0

    public init() {}

    /// Starts a pass: every tensor still taken (the last pass's output, any not given back) becomes free.
    public func beginPass() {
        for (_, t) in taken { free[t.shape, default: []].append(t) }
        taken.removeAll(keepingCapacity: true)
        pass += 1
        bytesTaken = 0
        peakBytesTaken = 0
    }

    /// A tensor of `shape` for this pass, its contents unspecified (the caller writes every element).
    public func take(_ shape: [Int]) -> Tensor {
        lastAsked[shape] = pass
        let t: Tensor
        if let reused = free[shape]?.popLast() {
            t = reused
        } else {
            releaseUnaskedShapes()
            t = Tensor(shape: shape)
            allocations += 1
            byteCount += Self.bytes(t)
        }
        taken[ObjectIdentifier(t)] = t
        bytesTaken += Self.bytes(t)
        peakBytesTaken = max(peakBytesTaken, bytesTaken)
        return t
    }

    /// Gives `t` back for reuse in this pass. A tensor the arena did not hand out in this pass (the caller's
    /// input, a view, one already given back) is left alone.
    public func give(_ t: Tensor) {
        guard taken.removeValue(forKey: ObjectIdentifier(t)) != nil else { return }
        bytesTaken -= Self.bytes(t)
        free[t.shape, default: []].append(t)
    }

    /// Frees the free tensors of every shape not asked for in this pass.
    private func releaseUnaskedShapes() {
        let stale = free.keys.filter { lastAsked[$0] != pass }
        for shape in stale {
            for t in free[shape] ?? [] { byteCount -= Self.bytes(t) }
            free[shape] = nil
            lastAsked[shape] = nil
        }
    }

    private static func bytes(_ t: Tensor) -> Int { max(t.count, 1) * MemoryLayout<Float>.stride }
}
