import Foundation
import NeuralNetwork

/// An image-to-image generator conversion can run (the MR→CT generator of a CycleGAN or a pix2pix model): its
/// channels, the multiple every image side must be, and inference.
public protocol SliceTranslationNetwork: ParameterContainer, Sendable {
    var inputChannels: Int { get }
    var outputChannels: Int { get }
    /// Image sides must be a multiple of this (ResNet generator: 4, two stride-2 stages; U-Net: 2^downsamplings).
    var sizeMultiple: Int { get }
    /// The memory one image adds to an inference call, in units of one input-sized single-channel float image, for
    /// memory estimates: its activations (`ActivationArena`) and the copies kernels make of a whole batch.
    var fullResolutionMaps: Int { get }
    /// N × C × H × W → N × outputChannels × H × W, in inference mode.
    func infer(_ input: Tensor) -> Tensor
    /// The arithmetic of the network's convolutions (`Precision`; default `.f32`).
    func setPrecision(_ precision: Precision)
    /// Where inference keeps the convolutions' transformed kernels (`InferenceKernelStorage`; default `.shared`).
    func setInferenceKernelStorage(_ storage: InferenceKernelStorage)
    /// Frees what inference keeps between calls (activation arenas, workspaces, transformed kernels, oneDNN
    /// primitives); the next call builds them again. No `infer` call may be running.
    func releaseInferenceBuffers()
}

extension ResnetGenerator: SliceTranslationNetwork {
    public var inputChannels: Int { configuration.inputChannels }
    public var outputChannels: Int { configuration.outputChannels }
    public var sizeMultiple: Int { 4 }
    /// With f = ngf: the activation arena keeps f + f/2 + 3·f/4 maps and the output (a full-resolution map of f
    /// channels, one of 2f at half and three of 4f at quarter resolution: InferenceArenaTests); oneDNN's blocked
    /// copies of the largest pass it runs (the first down-sampling: f in, f/2 out; one buffer per call in flight)
    /// add 1.5·f, the bf16 mode's rounded copy of the largest convolution input (f at full resolution) f more, and
    /// the 7 × 7 input convolution's padded input copy about the input's channels: 4.75·f + input + output channels.
    /// Measured 2026-12-01 at 256², ngf 64: 36.25 MiB of arena per image, 16 MiB per image more workspace with bf16
    /// (`inferenceMemory`), and 60 MiB of peak RSS per slice in flight in `mr2ct convert` (f32).
    public var fullResolutionMaps: Int { (19 * configuration.ngf + 3) / 4 + configuration.inputChannels + configuration.outputChannels }
}

extension UNetGenerator: SliceTranslationNetwork {
    public var inputChannels: Int { configuration.inputChannels }
    public var outputChannels: Int { configuration.outputChannels }
    public var sizeMultiple: Int { configuration.sizeMultiple }
    /// The half-resolution maps (ngf down, 2·ngf concatenated, the up-convolution's input) dominate: the activation
    /// arena keeps about 2·ngf full-size maps per image (measured at 256², ngf 64, 8 stages: 30.9 MiB), oneDNN's
    /// blocked copies of the outermost down-convolution ngf/4 + 1 and the bf16 mode's rounded copy of the last
    /// up-convolution's input ngf/2; 4·ngf plus input and output keeps the estimate on the safe side.
    public var fullResolutionMaps: Int { 4 * configuration.ngf + configuration.inputChannels + 1 }
}
