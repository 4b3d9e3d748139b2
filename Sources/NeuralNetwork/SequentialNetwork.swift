import Foundation

/// A network as one `Sequential`, with its own workspace for training passes and a pool of (record, workspace)
/// pairs for inference, so that `infer` may be called from several threads at once.
open class SequentialNetwork: ParameterContainer, @unchecked Sendable {
    public let network: Sequential
    public let parameters: [Parameter]
    /// The network's buffers (BatchNorm running statistics), saved and loaded with the parameters.
    public let buffers: [Buffer]
    /// Scratch memory of `forward`/`backward` (not thread-safe: one training pass at a time).
    public let workspace = Workspace()
    private let poolLock = NSLock()
    private var inferencePool: [(LayerRecord, Workspace)] = []

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

    /// Inference (no recording, Dropout off): N × C × H × W → the network's output, a new tensor.
    public func infer(_ input: Tensor) -> Tensor {
        poolLock.lock()
        let (record, ws) = inferencePool.popLast() ?? (LayerRecord(), Workspace())
        poolLock.unlock()
        let output = network.forward(input, record: record, mode: .inference, workspace: ws, consumeInput: false).copy()
        poolLock.lock()
        inferencePool.append((record, ws))
        poolLock.unlock()
        return output
    }

    /// Sets how every convolution of the network computes (default `.automatic`); for comparisons and benchmarks.
    public func setConvolutionAlgorithm(_ algorithm: ConvolutionAlgorithm) {
        visitConvolutions { $0.algorithm = algorithm } transposed: { $0.algorithm = algorithm }
    }

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

    /// Frees the buffers kept for inference.
    public func releaseInferenceBuffers() {
        poolLock.lock()
        inferencePool.removeAll()
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
