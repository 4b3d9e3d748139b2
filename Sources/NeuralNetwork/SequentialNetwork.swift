import Foundation

/// A network as one `Sequential`, with its own workspace for training passes and a pool of inference contexts
/// (record, workspace, activation arena), so that `infer` may be called from several threads at once: each call
/// takes a context of its own and gives it back after the pass.
open class SequentialNetwork: ParameterContainer, @unchecked Sendable {
    public let network: Sequential
    public let parameters: [Parameter]
    /// The network's buffers (BatchNorm running statistics), saved and loaded with the parameters.
    public let buffers: [Buffer]
    /// Scratch memory of `forward`/`backward` (not thread-safe: one training pass at a time).
    public let workspace = Workspace()
    private let poolLock = NSLock()
    private var inferencePool: [InferenceContext] = []

    /// The transformed kernels of all inference contexts: one copy however many calls run at once
    /// (`InferenceKernelStorage.shared`).
    private let inferenceKernels = KernelCache()

    /// Where inference keeps transformed kernels (default `.shared`). Set it before inference runs: changing it
    /// frees the inference contexts and the shared kernels.
    public var inferenceKernelStorage: InferenceKernelStorage = .shared {
        didSet { releaseInferenceBuffers() }
    }

    /// What one inference call uses, reused by later calls: an inference record over `arena` (outputs from the
    /// arena, nothing saved for backward) and the workspace of its kernels (sharing `inferenceKernels`).
    private struct InferenceContext {
        let arena = ActivationArena()
        let record: LayerRecord
        let workspace: Workspace
        init(kernels: KernelCache) {
            record = LayerRecord(arena: arena)
            workspace = Workspace(sharing: kernels)
        }
    }

    /// A network of `network`'s layers; other modules build their families on it (DCGAN, conditional GAN).
    public init(network: Sequential) {
        self.network = network
        parameters = network.parameters
        buffers = network.buffers
    }

    /// Training forward pass: saves in `record` what `backward` needs (one record per application).
    public func forward(_ input: Tensor, record: LayerRecord) -> Tensor {
        network.forward(input, record: record, mode: .training, workspace: workspace, consumeInput: false)
    }

    /// Backward pass of the application saved in `record`: dL/d(output) → dL/d(input), written to `gradInput`
    /// when given (nil: the input needs no gradient). Parameter gradients are accumulated when
    /// `parameterGradients` is true and untouched otherwise (a frozen network).
    public func backward(_ gradOutput: Tensor, record: LayerRecord, gradInput: Tensor? = nil, parameterGradients: Bool = true) {
        precondition(gradOutput.count == record.output!.count, "backward: gradient \(gradOutput.shape) for output \(record.output!.shape)")
        network.backward(UnsafePointer(gradOutput.pointer), gradInput: gradInput?.pointer, record: record,
                         parameterGradients: parameterGradients, workspace: workspace, depth: 0)
    }

    /// Inference (no recording, Dropout off, BatchNorm on its running statistics): N × C × H × W → the network's
    /// output, a new tensor. The pass holds only the activations alive at once (`ActivationArena`), reused by the
    /// next call of the same shape, which then allocates nothing but the returned copy.
    public func infer(_ input: Tensor) -> Tensor {
        poolLock.lock()
        let context = inferencePool.popLast() ?? InferenceContext(kernels: inferenceKernelStorage == .shared
                                                                  ? inferenceKernels : KernelCache(retention: .lastLayer))
        poolLock.unlock()
        context.arena.beginPass()
        let output = network.forward(input, record: context.record, mode: .inference, workspace: context.workspace,
                                     consumeInput: false).copy()
        context.record.forgetActivations()
        poolLock.lock()
        inferencePool.append(context)
        poolLock.unlock()
        return output
    }

    /// The memory the idle inference contexts hold (their workspaces and activation arenas), summed over the pool,
    /// and their shared kernel cache, counted once (with `.perCall`, each context's kernel buffer is counted in
    /// its workspace bytes).
    public var inferenceMemory: InferenceMemory {
        poolLock.lock()
        defer { poolLock.unlock() }
        var memory = InferenceMemory(kernelBytes: inferenceKernels.byteCount)
        for context in inferencePool {
            memory.contexts += 1
            memory.workspaceBytes += inferenceKernelStorage == .shared ? context.workspace.scratchByteCount
                                                                       : context.workspace.byteCount
            memory.activationBytes += context.arena.byteCount
            memory.peakActivationBytes += context.arena.peakBytesTaken
            memory.activationAllocations += context.arena.allocations
        }
        return memory
    }

    /// Sets how every convolution of the network computes (default `.automatic`); for comparisons and benchmarks.
    public func setConvolutionAlgorithm(_ algorithm: ConvolutionAlgorithm) {
        visitConvolutions { $0.algorithm = algorithm } transposed: { $0.algorithm = algorithm }
    }

    /// Sets `inferenceKernelStorage` (for callers that hold the network as a protocol).
    public func setInferenceKernelStorage(_ storage: InferenceKernelStorage) { inferenceKernelStorage = storage }

    /// Sets the arithmetic of every convolution of the network (`Precision`; default `.f32`).
    public func setPrecision(_ precision: Precision) {
        visitConvolutions { $0.precision = precision } transposed: { $0.precision = precision }
    }

    private func visitConvolutions(_ conv: (Conv2d) -> Void, transposed: (ConvTranspose2d) -> Void) {
        func visit(_ layer: Layer) {
            switch layer {
            case let c as Conv2d: conv(c)
            case let t as ConvTranspose2d: transposed(t)
            case let sequential as Sequential: sequential.layers.forEach(visit)
            case let residual as ResidualBlock: visit(residual.block)
            default: break
            }
        }
        visit(network)
    }

    /// Frees the training passes' workspace (scratch buffers, shared activations, transformed kernels; the next
    /// training pass allocates them again). No training pass may be running; inference is unaffected.
    public func releaseTrainingBuffers() { workspace.releaseBuffers() }

    /// Frees the buffers and transformed kernels kept for inference (no `infer` call may be running).
    public func releaseInferenceBuffers() {
        poolLock.lock()
        inferencePool.removeAll()
        inferenceKernels.removeAll()
        poolLock.unlock()
    }

    /// Weights initialised per layer kind (`WeightInitializer`): as pytorch-CycleGAN-and-pix2pix
    /// `init_weights(init_type='normal', gain=0.02)` and examples/dcgan `weights_init` — convolution weights
    /// ~ N(0, 0.02), biases 0, normalisation scales ~ N(1, 0.02) and shifts 0; gradients zeroed.
    public func initializeWeights(seed: UInt64, gain: Double = 0.02) {
        var initializer = WeightInitializer(seed: seed, gain: gain)
        network.initializeWeights(&initializer)
        for p in parameters { p.gradient.fill(0) }
    }
}

/// The memory held by a network's idle inference contexts (`SequentialNetwork.inferenceMemory`).
public struct InferenceMemory: Sendable, Equatable {
    /// Contexts in the pool (one per concurrent `infer` call seen).
    public var contexts = 0
    /// Bytes of the contexts' workspaces: column buffers, padded copies, oneDNN primitives.
    public var workspaceBytes = 0
    /// Bytes of the transformed kernels (Winograd, bf16-rounded weights) all contexts share: one copy.
    public var kernelBytes = 0
    /// Bytes of the contexts' activation arenas (every activation tensor they keep for the next pass).
    public var activationBytes = 0
    /// The most activation bytes alive at once in each context's last pass, summed.
    public var peakActivationBytes = 0
    /// Activation tensors the arenas allocated since they were made.
    public var activationAllocations = 0

    /// Workspace, kernel and activation bytes together.
    public var totalBytes: Int { workspaceBytes + kernelBytes + activationBytes }
}

/// Where inference keeps the convolutions' transformed kernels (Winograd, bf16-rounded weights).
public enum InferenceKernelStorage: Sendable {
    /// Every layer's, transformed once and shared by all calls (at 256², ngf 64, the F(4×4) kernels of the
    /// 18 residual convolutions are 162 MB, 4× the weights).
    case shared
    /// Each call transforms each layer's kernels when it reaches the layer, into one buffer of its own (one
    /// layer's worth: 9.4 MB at ngf 64). The output is the same bits; the transforms cost time per call.
    case perCall
}
