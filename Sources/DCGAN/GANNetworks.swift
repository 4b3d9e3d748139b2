import Foundation
import NeuralNetwork

/// The DC-GAN generator of PyTorch's examples/dcgan (Radford et al. 2015), `main.0` … `main.13`: transposed
/// convolutions 4 × 4 stride 2 (the first side/16 stride 1 from z's 1 × 1, 4 at the default 64), each but the last
/// followed by BatchNorm and ReLU, channels ngf·8 → ·4 → ·2 → ngf → nc, Tanh; no biases. At side 64 this is the
/// example's network; other multiples of 16 keep its layers and names.
func dcganGeneratorLayers(inputChannels: Int, ngf: Int, channels: Int, imageSize: Int) -> Sequential {
    var layers: [Layer] = [], consumes: [Bool] = []
    func add(_ l: Layer, _ consume: Bool = false) { layers.append(l); consumes.append(consume) }
    let widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
    add(ConvTranspose2d(name: "main.0", inputChannels: inputChannels, outputChannels: widths[0], kernelSize: imageSize / 16, bias: false))
    add(BatchNorm2d(name: "main.1", channels: widths[0]))
    add(Activation(.relu), true)
    for i in 1..<4 {
        add(ConvTranspose2d(name: "main.\(3 * i)", inputChannels: widths[i - 1], outputChannels: widths[i], kernelSize: 4,
                            stride: 2, padding: 1, bias: false))
        add(BatchNorm2d(name: "main.\(3 * i + 1)", channels: widths[i]))
        add(Activation(.relu), true)
    }
    add(ConvTranspose2d(name: "main.12", inputChannels: ngf, outputChannels: channels, kernelSize: 4, stride: 2, padding: 1, bias: false))
    add(Activation(.tanh), true)
    return Sequential(layers, consumes: consumes)
}

/// The DC-GAN discriminator of examples/dcgan, `main.0` … `main.11`: 4 × 4 stride-2 convolutions nc → ndf → ·2 →
/// ·4 → ·8 (BatchNorm after all but the first), LeakyReLU 0.2, then a side/16 convolution to one logit; no biases.
/// The example's final Sigmoid is not a layer here: it is fused into the loss (BCE with logits, the same value
/// and gradient as `nn.BCELoss(sigmoid(x))`, without its log clamp), and D(x) is reported as σ(logit).
func dcganDiscriminatorLayers(inputChannels: Int, ndf: Int, imageSize: Int) -> Sequential {
    var layers: [Layer] = [], consumes: [Bool] = []
    func add(_ l: Layer, _ consume: Bool = false) { layers.append(l); consumes.append(consume) }
    add(Conv2d(name: "main.0", inputChannels: inputChannels, outputChannels: ndf, kernelSize: 4, stride: 2, padding: 1, bias: false))
    add(Activation(.leakyReLU(slope: 0.2)), true)
    for i in 1..<4 {
        add(Conv2d(name: "main.\(3 * i - 1)", inputChannels: ndf << (i - 1), outputChannels: ndf << i, kernelSize: 4,
                   stride: 2, padding: 1, bias: false))
        add(BatchNorm2d(name: "main.\(3 * i)", channels: ndf << i))
        add(Activation(.leakyReLU(slope: 0.2)), true)
    }
    add(Conv2d(name: "main.11", inputChannels: ndf * 8, outputChannels: 1, kernelSize: imageSize / 16, bias: false))
    return Sequential(layers, consumes: consumes)
}

/// A network with an optional class input: without classes it is its `body` alone (DC-GAN); with classes
/// (conditional GAN) the class goes through `label_embedding` (an `Embedding`), is reshaped to `conditionShape`
/// (embedding × 1 × 1 for the generator, label channels × side × side for the discriminator) and concatenated to
/// the input along the channels before the body. Parameters in PyTorch state_dict order: `label_embedding.weight`,
/// then the body's `main.*`; the body's BatchNorm buffers follow.
public final class ConditionedNetwork: ParameterContainer, @unchecked Sendable {
    public let body: SequentialNetwork
    public let embedding: Embedding?
    let reshape: Reshape?
    let concat = ConcatChannels()
    public let parameters: [Parameter]
    public var buffers: [Buffer] { body.buffers }
    private let inferenceLock = NSLock()
    /// The inference record of `infer` (outputs from its arena, reused from call to call).
    private let inferenceArena = ActivationArena()
    private lazy var inferenceRecord = LayerRecord(arena: inferenceArena)

    init(body: Sequential, classes: Int, conditionShape: [Int]) {
        self.body = SequentialNetwork(network: body)
        if classes > 0 {
            let embedding = Embedding(name: "label_embedding", count: classes, dimension: conditionShape.reduce(1, *))
            self.embedding = embedding
            reshape = Reshape(conditionShape)
            parameters = embedding.parameters + self.body.parameters
        } else {
            embedding = nil
            reshape = nil
            parameters = self.body.parameters
        }
    }

    /// Per layer kind (`WeightInitializer`, gain 0.02), in state_dict order; gradients zeroed.
    public func initializeWeights(seed: UInt64) {
        var initializer = WeightInitializer(seed: seed)
        embedding?.initializeWeights(&initializer)
        body.network.initializeWeights(&initializer)
        zeroGradients()
    }

    /// Forward pass of `input` (with `labels`, N class indices as floats, when conditioned); `record` keeps what
    /// backward needs.
    public func forward(_ input: Tensor, labels: Tensor?, record: LayerRecord, mode: ForwardMode = .training) -> Tensor {
        var x = input
        if let embedding, let reshape {
            guard let labels else { preconditionFailure("ConditionedNetwork: a conditional network needs labels") }
            let e = embedding.forward(labels, record: record.child(0), mode: mode, workspace: body.workspace, consumeInput: false)
            let r = reshape.forward(e, record: record.child(1), mode: mode, workspace: body.workspace, consumeInput: false)
            x = concat.forward(input, r, record: record.child(2))
        }
        return body.network.forward(x, record: record.child(3), mode: mode, workspace: body.workspace, consumeInput: false)
    }

    /// Backward pass: dL/d(output) → dL/d(input) into `gradInput` when given; parameter gradients accumulated
    /// when `parameterGradients` (else the network is frozen).
    public func backward(_ gradOutput: Tensor, record: LayerRecord, gradInput: Tensor?, parameterGradients: Bool) {
        let bodyRecord = record.children[3]
        guard let embedding, let reshape else {
            body.backward(gradOutput, record: bodyRecord, gradInput: gradInput, parameterGradients: parameterGradients)
            return
        }
        let joined = record.savedTensor(0, shape: bodyRecord.input!.shape)
        body.backward(gradOutput, record: bodyRecord, gradInput: joined, parameterGradients: parameterGradients)
        let condition = record.savedTensor(1, shape: record.children[1].output!.shape)
        concat.backward(UnsafePointer(joined.data.baseAddress!), gradA: gradInput?.data.baseAddress,
                        gradB: condition.data.baseAddress, record: record.children[2])
        guard parameterGradients else { return }
        let flat = record.savedTensor(2, shape: record.children[0].output!.shape)
        reshape.backward(UnsafePointer(condition.data.baseAddress!), gradInput: flat.data.baseAddress, record: record.children[1],
                         parameterGradients: true, workspace: body.workspace, depth: 0)
        embedding.backward(UnsafePointer(flat.data.baseAddress!), gradInput: nil, record: record.children[0],
                           parameterGradients: true, workspace: body.workspace, depth: 0)
    }

    /// Inference (BatchNorm on its running statistics), a new tensor. One call at a time; the activations live in
    /// an `ActivationArena` reused by the next call.
    public func infer(_ input: Tensor, labels: Tensor?) -> Tensor {
        inferenceLock.lock()
        defer { inferenceLock.unlock() }
        inferenceArena.beginPass()
        let output = forward(input, labels: labels, record: inferenceRecord, mode: .inference).copy()
        inferenceRecord.forgetActivations()
        return output
    }
}

extension GANConfiguration {
    /// The generator: z (N × nz × 1 × 1) [+ class embedding] → N × channels × side × side in [−1, 1].
    public func makeGenerator() -> ConditionedNetwork {
        let conditioned = family == .cgan
        return ConditionedNetwork(body: dcganGeneratorLayers(inputChannels: nz + (conditioned ? embeddingDimension : 0), ngf: ngf,
                                                             channels: channels, imageSize: imageSize),
                                  classes: classCount, conditionShape: [embeddingDimension, 1, 1])
    }

    /// The discriminator: image [+ class channels] → N × 1 × 1 × 1 logits.
    public func makeDiscriminator() -> ConditionedNetwork {
        let conditioned = family == .cgan
        return ConditionedNetwork(body: dcganDiscriminatorLayers(inputChannels: channels + (conditioned ? labelChannels : 0),
                                                                 ndf: ndf, imageSize: imageSize),
                                  classes: classCount, conditionShape: [labelChannels, imageSize, imageSize])
    }
}
