import Foundation
import NeuralNetwork

/// An image-to-image generator conversion can run (the MR→CT generator of a CycleGAN or a pix2pix model): its
/// channels, the multiple every image side must be, and inference.
public protocol SliceTranslationNetwork: ParameterContainer, Sendable {
    var inputChannels: Int { get }
    var outputChannels: Int { get }
    /// Image sides must be a multiple of this (ResNet generator: 4, two stride-2 stages; U-Net: 2^downsamplings).
    var sizeMultiple: Int { get }
    /// Feature maps of full-resolution size alive at once in inference, for memory estimates (in units of one
    /// input-sized single-channel image).
    var fullResolutionMaps: Int { get }
    /// N × C × H × W → N × outputChannels × H × W, in inference mode.
    func infer(_ input: Tensor) -> Tensor
    /// The arithmetic of the network's convolutions (`Precision`; default `.f32`).
    func setPrecision(_ precision: Precision)
}

extension ResnetGenerator: SliceTranslationNetwork {
    public var inputChannels: Int { configuration.inputChannels }
    public var outputChannels: Int { configuration.outputChannels }
    public var sizeMultiple: Int { 4 }
    public var fullResolutionMaps: Int { 4 * configuration.ngf + configuration.inputChannels + 1 }
}

extension UNetGenerator: SliceTranslationNetwork {
    public var inputChannels: Int { configuration.inputChannels }
    public var outputChannels: Int { configuration.outputChannels }
    public var sizeMultiple: Int { configuration.sizeMultiple }
    /// The half-resolution maps (ngf down, 2·ngf concatenated, the up-convolution's input) dominate: about
    /// 3·ngf/4 full-size maps each, plus input and output; 4·ngf keeps the estimate on the safe side.
    public var fullResolutionMaps: Int { 4 * configuration.ngf + configuration.inputChannels + 1 }
}
