import Foundation

/// Whether a forward pass trains (saves what backward needs; Dropout and BatchNorm in training behaviour) or
/// infers (saves nothing extra; Dropout is the identity, BatchNorm uses its running statistics).
public enum ForwardMode: Sendable {
    case training
    case inference
}

/// What one application of a layer keeps for its backward pass: the input it saw, its output and saved
/// intermediates. A network applied three times in one loss uses three records. Records are reused across
/// iterations: buffers are reallocated only when a shape changes, so the steady state allocates nothing.
///
/// An *inference record* (`init(arena:)`, made by `SequentialNetwork.infer` for its inference contexts) belongs to
/// passes that no backward follows: its outputs come from the `ActivationArena` and live by the arena's lifetime
/// rule, layers save nothing full-size for backward (no x̂) and may overwrite an input they are allowed to
/// consume, and `input`/`output` are valid only during the pass (`forgetActivations`). A record made with `init()`
/// keeps everything backward needs, in either `ForwardMode`.
public final class LayerRecord: @unchecked Sendable {
    /// The input of the last forward pass (owned by the previous layer's record or by the caller).
    public package(set) var input: Tensor?
    /// The output of the last forward pass.
    public package(set) var output: Tensor?
    /// Intermediates a layer saves for its backward pass, by slot.
    package var saved: [Tensor?] = []
    /// The records of a composite layer's parts (a `Sequential`'s layers, a block's branch).
    package var children: [LayerRecord] = []

    /// Where a training pass writes this layer's output instead of a buffer of the record's own: a view of the
    /// workspace's shared activation buffer (`Workspace.sharedActivation(shape:)`), set by `Sequential` for an
    /// output it rebuilds before it is read again (`OutputRecomputingLayer`); nil: the record's own buffer.
    package var sharedOutput: Tensor?

    /// The output buffer of the record's own (`outputTensor(shape:)`), reused while the shape stays.
    private var ownedOutput: Tensor?

    /// Whether the last pass's output lives in the workspace's shared buffer (and so is not the record's memory).
    package var outputIsShared: Bool { sharedOutput != nil && output === sharedOutput }

    /// The arena of an inference record (nil: a record that keeps what backward needs).
    package let arena: ActivationArena?

    public init() { arena = nil }

    /// An inference record taking its outputs from `arena`; its children share the arena.
    public init(arena: ActivationArena) { self.arena = arena }

    /// Whether this is an inference record: no backward follows its pass.
    @inline(__always) package var isInference: Bool { arena != nil }

    /// A reused buffer of `shape` in slot `index` of `saved` (zeroed only when first allocated).
    package func savedTensor(_ index: Int, shape: [Int]) -> Tensor {
        while saved.count <= index { saved.append(nil) }
        if let t = saved[index], t.shape == shape { return t }
        let t = Tensor(shape: shape)
        saved[index] = t
        return t
    }

    /// The reused output buffer of `shape`; in an inference record a tensor of the arena's (contents unspecified:
    /// layers write every element of their output).
    package func outputTensor(shape: [Int]) -> Tensor {
        if let arena {
            let t = arena.take(shape)
            output = t
            return t
        }
        if let t = sharedOutput, t.shape == shape {
            output = t
            return t
        }
        if let t = ownedOutput, t.shape == shape {
            output = t
            return t
        }
        let t = Tensor(shape: shape)
        ownedOutput = t
        output = t
        return t
    }

    /// Gives `t` back to the arena of an inference record once nothing reads it again in this pass, unless it
    /// shares its storage with `kept` (an in-place layer's output, a view); a no-op in a training record.
    package func release(_ t: Tensor, keeping kept: Tensor) {
        guard let arena, t.pointer != kept.pointer else { return }
        arena.give(t)
    }

    /// Frees everything this record keeps (its children included); the next pass allocates its buffers again.
    package func releaseBuffers() {
        input = nil
        output = nil
        ownedOutput = nil
        sharedOutput = nil
        saved.removeAll()
        children.removeAll()
    }

    package func child(_ index: Int) -> LayerRecord {
        while children.count <= index { children.append(arena.map { LayerRecord(arena: $0) } ?? LayerRecord()) }
        return children[index]
    }

    /// Drops this record's (and its children's) references to the tensors of the last pass, so that a finished
    /// inference pass leaves its activations to the arena alone (which may then free them on a shape change).
    package func forgetActivations() {
        input = nil
        output = nil
        for child in children { child.forgetActivations() }
    }
}

/// Scratch memory shared by the layers of one network: column buffers for im2col, padded images and the
/// ping-pong buffers that carry gradients backward. Grows to the largest size asked and is then reused.
public final class Workspace: @unchecked Sendable {
    private var buffers: [Int: (pointer: UnsafeMutablePointer<Float>, capacity: Int)] = [:]

    /// The transformed kernels this workspace's layers use: its own, or (`SequentialNetwork`'s inference contexts)
    /// one cache shared by several workspaces, so that concurrent inference calls hold one copy.
    let kernels: KernelCache

    public init() { kernels = KernelCache() }

    init(sharing kernels: KernelCache) { self.kernels = kernels }

    deinit {
        for (_, b) in buffers { UnsafeMutableRawPointer(b.pointer).deallocate() }
    }

    /// The workspace's slots. Layers of other modules take theirs from `firstFreeSlot` upward (below the
    /// gradient slots, which start at 16 and grow with nesting depth).
    package enum Slot {
        package static let columns = 0
        package static let columns2 = 1
        package static let padded = 2
        package static let reduction = 3
        package static let winogradOutput = 4
        package static let firstFreeSlot = 5
        // The convolutions' copies for oneDNN and bf16 (below the numbered slots, which other modules count up from).
        package static let bfloat16Input = -1
        package static let bfloat16Gradient = -2
        package static let oneDNNPadded = -3
        package static let winogradKernelGradient = -4
        package static func gradient(depth: Int, parity: Int) -> Int { 16 + depth * 2 + parity }
    }

    /// A buffer of at least `count` floats in `slot`; its contents are unspecified.
    package func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if let b = buffers[slot], b.capacity >= count { return b.pointer }
        if let b = buffers[slot] { UnsafeMutableRawPointer(b.pointer).deallocate() }
        let capacity = max(count, 16)
        let p = Self.allocate(capacity)
        buffers[slot] = (p, capacity)
        return p
    }

    /// The buffer behind `sharedActivation(shape:)` and its views by shape.
    private var sharedActivations: (base: Tensor, views: [[Int]: Tensor])?

    /// A view of `shape` on the workspace's one shared activation buffer (grown to the largest shape asked, then
    /// reused; the same view object for the same shape): where the training passes of this workspace's network
    /// keep outputs that `Sequential` rebuilds before they are read again (`OutputRecomputingLayer`). Its contents
    /// are whatever the last layer to use it wrote.
    package func sharedActivation(shape: [Int]) -> Tensor {
        if let view = sharedActivations?.views[shape] { return view }
        let count = shape.reduce(1, *)
        if sharedActivations == nil || sharedActivations!.base.count < count {
            sharedActivations = (Tensor(shape: [max(count, 1)]), [:])
        }
        let view = Tensor(prefixOf: sharedActivations!.base, shape: shape)
        sharedActivations!.views[shape] = view
        return view
    }

    /// Frees the scratch buffers, the shared activation buffer and the transformed kernels (the oneDNN primitives,
    /// whose creation compiles code, stay); the next pass allocates what it needs again. No pass may be running.
    package func releaseBuffers() {
        for (_, b) in buffers { UnsafeMutableRawPointer(b.pointer).deallocate() }
        buffers.removeAll()
        sharedActivations = nil
        kernels.removeAll()
    }

    /// Bytes of the shared activation buffer (0 until a training pass asks for it).
    package var sharedActivationBytes: Int { (sharedActivations?.base.count ?? 0) * MemoryLayout<Float>.stride }

    /// `count` floats, 64-byte aligned, uninitialised; freed with `UnsafeMutableRawPointer(p).deallocate()`.
    fileprivate static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
    }

    /// Bytes currently held, the kernel cache included.
    public var byteCount: Int { scratchByteCount + kernels.byteCount }

    /// Bytes held by the scratch buffers and oneDNN primitives (everything but the kernel cache).
    var scratchByteCount: Int {
        buffers.values.reduce(0) { $0 + $1.capacity * 4 } + oneDNNCache.values.reduce(0) { $0 + ($1?.byteCount ?? 0) }
            + sharedActivationBytes
    }

    struct OneDNNKey: Hashable {
        var layer: ObjectIdentifier
        var pass: ConvolutionPass
        var shape: OneDNNShape
    }

    /// oneDNN primitives per layer, pass and shape (nil: oneDNN has no implementation, do not ask again).
    private var oneDNNCache: [OneDNNKey: OneDNNConvolution?] = [:]

    /// The oneDNN convolution of `layer` for `pass` at `shape`, built on first use.
    func oneDNN(layer: AnyObject, pass: ConvolutionPass, shape: OneDNNShape) -> OneDNNConvolution? {
        let key = OneDNNKey(layer: ObjectIdentifier(layer), pass: pass, shape: shape)
        if let cached = oneDNNCache[key] { return cached }
        let made = OneDNNConvolution(shape, passes: [pass])
        oneDNNCache[key] = made
        return made
    }

    /// Transformed kernels of one layer (`Winograd3x3`, bf16-rounded weights), kept while the weights they came
    /// from are unchanged (`KernelCache`).
    func transformedKernels(layer: AnyObject, kind: KernelCache.Kind, fingerprint: UInt64, count: Int,
                            fill: (UnsafeMutablePointer<Float>) -> Void) -> UnsafePointer<Float> {
        kernels.kernels(layer: layer, kind: kind, fingerprint: fingerprint, count: count, fill: fill)
    }
}

/// Transformed kernels per layer and kind, each kept while the weights it came from are unchanged. Thread-safe:
/// the inference contexts of one network share one cache, so that two slices converted at once hold one copy of
/// the Winograd kernels (at 256², ngf 64, 170 MB for F(4×4, 3×3)). An entry is filled under the lock and only read
/// afterwards; the weights must not change while calls that use them run.
///
/// With `retention` `.lastLayer` the cache keeps one buffer per kind, refilled for each layer that asks: a pass
/// then transforms every layer's kernels again (the same bits) and holds one layer's worth. Such a cache must not
/// be shared by calls that run at once.
final class KernelCache: @unchecked Sendable {
    /// What a cached kernel buffer holds for its layer.
    enum Kind: Hashable {
        /// `Winograd3x3.transformKernels` for the forward pass or (`adjoint`) for backward-data.
        case winograd(WinogradTile, adjoint: Bool)
        /// The weights rounded to bfloat16 (`Precision.bf16` emulated).
        case bfloat16Weights
    }

    /// Which transformed kernels a cache keeps.
    enum Retention {
        /// Every layer's, until its weights change.
        case everyLayer
        /// The last layer's only, per kind (a layer's Winograd kernels are made from its bf16-rounded weights, which
        /// stay): one buffer per kind, as large as the largest layer's kernels of that kind.
        case lastLayer
    }

    private struct Key: Hashable {
        var layer: ObjectIdentifier
        var kind: Kind
    }

    private struct Entry {
        var fingerprint: UInt64
        var pointer: UnsafeMutablePointer<Float>
        var count: Int
        var capacity: Int
    }

    let retention: Retention
    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]

    init(retention: Retention = .everyLayer) { self.retention = retention }

    deinit {
        for (_, k) in entries { UnsafeMutableRawPointer(k.pointer).deallocate() }
    }

    /// Frees every entry (no call may be using them).
    func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        for (_, k) in entries { UnsafeMutableRawPointer(k.pointer).deallocate() }
        entries.removeAll()
    }

    /// Bytes held.
    var byteCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.values.reduce(0) { $0 + $1.capacity * 4 }
    }

    /// The kernels of `layer` of this `kind`: `fill` runs only when `fingerprint` (a hash of the weights' bits)
    /// differs from the cached one, or the size changed, or (`.lastLayer`) another layer or kind asked last.
    func kernels(layer: AnyObject, kind: Kind, fingerprint: UInt64, count: Int,
                 fill: (UnsafeMutablePointer<Float>) -> Void) -> UnsafePointer<Float> {
        lock.lock()
        defer { lock.unlock() }
        let key = Key(layer: ObjectIdentifier(layer), kind: kind)
        if var entry = entries[key], entry.count == count {
            if entry.fingerprint != fingerprint {
                fill(entry.pointer)
                entry.fingerprint = fingerprint
                entries[key] = entry
            }
            return UnsafePointer(entry.pointer)
        }
        // A buffer to reuse: this key's own (its size changed), or with `.lastLayer` the one of this kind there is.
        var reusable = entries.removeValue(forKey: key)
        if reusable == nil, retention == .lastLayer, let other = entries.keys.first(where: { $0.kind == kind }) {
            reusable = entries.removeValue(forKey: other)
        }
        var entry: Entry
        if let r = reusable, r.capacity >= count {
            entry = Entry(fingerprint: fingerprint, pointer: r.pointer, count: count, capacity: r.capacity)
        } else {
            if let r = reusable { UnsafeMutableRawPointer(r.pointer).deallocate() }
            let capacity = max(count, 16)
            entry = Entry(fingerprint: fingerprint, pointer: Workspace.allocate(capacity), count: count, capacity: capacity)
        }
        fill(entry.pointer)
        entries[key] = entry
        return UnsafePointer(entry.pointer)
    }
}

/// A layer with its forward pass and, beside it, its backward pass.
///
/// `forward` leaves its output in `record.output` (reused across calls) and saves what `backward` needs.
/// `backward` turns dL/d(output) into dL/d(input) — written to `gradInput` when it is non-nil, skipped when
/// nil (the input needs no gradient, e.g. real images or a detached tensor) — and, when `parameterGradients`
/// is true, adds dL/d(parameters) to the parameters' `gradient` tensors. With `parameterGradients` false,
/// gradients flow through a frozen layer without touching its parameters.
public protocol Layer: AnyObject {
    var parameters: [Parameter] { get }
    /// Non-trainable state saved with the parameters (BatchNorm's running statistics), PyTorch's buffers.
    var buffers: [Buffer] { get }
    /// Sets the parameters (and resets the buffers) as this kind of layer is initialised (`WeightInitializer`).
    func initializeWeights(_ initializer: inout WeightInitializer)
    func outputShape(for inputShape: [Int]) -> [Int]
    /// `consumeInput`: the caller allows the layer to overwrite `input` (e.g. InstanceNorm normalising a
    /// convolution's output in place, which that convolution does not need again).
    func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                 consumeInput: Bool) -> Tensor
    func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?, record: LayerRecord,
                  parameterGradients: Bool, workspace: Workspace, depth: Int)
}

/// A layer whose training forward pass can rebuild its output, bit for bit, from what it saves for its own backward
/// pass (InstanceNorm2d with an activation or an affine map: act(γ·x̂ + β) from the x̂ it keeps). When the next layer
/// of a `Sequential` reads that output only in its own passes (`SharedActivationReader`), the output is written to
/// the workspace's shared activation buffer instead of a buffer of the record's, and rebuilt just before the next
/// layer's backward pass reads it: a training record then holds x̂ alone where it held x̂ and act(x̂) (at 256², ngf 64,
/// 92 of a ResNet generator application's 248 MB). The cost is one pass over x̂ per such layer in backward.
package protocol OutputRecomputingLayer: Layer {
    /// Whether a training pass of this layer writes its output to a tensor of its own that it can rebuild.
    var canRecomputeOutput: Bool { get }
    /// Rewrites `record.output` as the last training forward pass on `record` wrote it.
    func recomputeOutput(record: LayerRecord)
}

/// A layer whose forward and backward passes read their input and write no other layer's tensors or the
/// workspace's shared activation buffer (the convolutions), so that its input may live in that buffer.
package protocol SharedActivationReader: Layer {}

extension Layer {
    /// No buffers (every layer but the batch normalisation).
    public var buffers: [Buffer] { [] }

    /// Layers without parameters have nothing to initialise; a layer with parameters must say how.
    public func initializeWeights(_ initializer: inout WeightInitializer) {
        precondition(parameters.isEmpty, "\(Self.self) has parameters but no initialisation of its own")
    }

    /// Forward pass with a private workspace (convenient in tests; models pass their own workspace).
    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode = .training) -> Tensor {
        forward(input, record: record, mode: mode, workspace: Workspace(), consumeInput: false)
    }

    /// Backward pass returning dL/d(input) as a new tensor; accumulates parameter gradients when asked.
    @discardableResult
    public func backward(_ gradOutput: Tensor, record: LayerRecord, parameterGradients: Bool = true) -> Tensor {
        let input = record.input!
        let gradInput = Tensor(shape: input.shape)
        backward(UnsafePointer(gradOutput.pointer), gradInput: gradInput.pointer, record: record,
                 parameterGradients: parameterGradients, workspace: Workspace(), depth: 0)
        return gradInput
    }
}

/// The number of threads MR2CT's kernels use: OpenBLAS's threads and the threads of the non-GEMM loops
/// (which run between GEMMs, so the two never compete).
public enum ComputeThreads {
    nonisolated(unsafe) private static var current = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The thread count in use.
    public static var count: Int { current }

    /// Sets the thread count for GEMMs (OpenBLAS) and for the element-wise and reduction loops.
    public static func set(_ threads: Int) {
        current = max(1, threads)
        BLAS.setThreads(current)
    }

    /// True while `pair` runs two independent chains, each with single-threaded kernels.
    nonisolated(unsafe) static var serial = false

    /// Runs two independent pieces of work at once, each on one core with single-threaded kernels (GEMM and
    /// loops), when two or more threads are allowed; else one after the other. The two must not share
    /// mutable state (a CycleGAN step pairs G_A's work with G_B's, D_A's with D_B's). Two chains of
    /// single-threaded kernels keep both cores busy through the non-GEMM work and the small GEMMs that
    /// do not scale across threads.
    public static func pair<A, B>(_ a: () -> A, _ b: () -> B) -> (A, B) {
        if current < 2 || !enterSerial() { return (a(), b()) }
        let ra = ResultBox<A>(), rb = ResultBox<B>()
        withoutActuallyEscaping(a) { a in
            withoutActuallyEscaping(b) { b in
                let box = UncheckedBox((a, b))
                let piece: (Int) -> Void = { i in
                    if i == 0 { ra.value = box.value.0() } else { rb.value = box.value.1() }
                }
                if !ComputePool.shared.run(2, piece) { piece(0); piece(1) }
            }
        }
        leaveSerial()
        return (ra.value!, rb.value!)
    }
}

extension ComputeThreads {
    /// `[body(0), …, body(n − 1)]`, computed on up to `count` threads at once, each item on single-threaded
    /// kernels (as `pair`'s chains), when two or more threads are allowed and no other fork is running; else one
    /// item after the other on the usual kernels. Independent items only (e.g. generator inference calls on
    /// different slices: `SequentialNetwork.infer` is safe from several threads). Each item then rounds exactly
    /// as with one compute thread; with several threads inside one call a few kernels (OpenBLAS's own threading)
    /// may round differently in the last bits.
    public static func map<T>(_ n: Int, _ body: (Int) -> T) -> [T] {
        guard n > 1, current > 1 else { return (0..<n).map(body) }
        let boxes = (0..<n).map { _ in ResultBox<T>() }
        let chains = min(n, current)
        fork(chains) { chain in
            var i = chain
            while i < n { boxes[i].value = body(i); i += chains }
        }
        return boxes.map { $0.value! }
    }

    /// Runs `body(0..<n)` on n threads at once with single-threaded kernels inside.
    static func fork(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 || !enterSerial() { for i in 0..<n { body(i) }; return }
        if !ComputePool.shared.run(n, body) { for i in 0..<n { body(i) } }
        leaveSerial()
    }

    private static let serialLock = NSLock()

    /// Switches kernels to single-threaded for a fork; false when another fork (of this or another caller
    /// thread, e.g. concurrent `infer` calls) is already running, in which case the caller runs inline.
    private static func enterSerial() -> Bool {
        serialLock.lock()
        defer { serialLock.unlock() }
        if serial { return false }
        serial = true
        BLAS.setThreads(1)
        return true
    }

    private static func leaveSerial() {
        serialLock.lock()
        serial = false
        BLAS.setThreads(current)
        serialLock.unlock()
    }
}

final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

/// Runs `body(chunk)` for `chunks` contiguous pieces of `0..<count` on up to `ComputeThreads.count` threads.
@inline(__always)
package func parallelFor(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = ComputeThreads.serial ? 1 : min(ComputeThreads.count, max(1, count / max(minimumPerThread, 1)))
    if threads <= 1 || count <= 1 {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { body in
        let piece: (Int) -> Void = { t in
            let lo = count * t / threads, hi = count * (t + 1) / threads
            if lo < hi { body(lo..<hi) }
        }
        // A busy pool (a fork on another thread, or this one nested): the same chunks one after the other, so that
        // a body whose chunks reduce separately rounds the same either way.
        if !ComputePool.shared.run(threads, piece) { for t in 0..<threads { piece(t) } }
    }
}

/// Carries a closure over raw buffers into a fork's pieces; the chunks it is called with are disjoint.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
