import Foundation
import NeuralNetwork

/// The PatchGAN discriminator as pix2pix builds it by default (pytorch-CycleGAN-and-pix2pix `NLayerDiscriminator`
/// with `--norm batch`): the same layers and `state_dict` names as `NLayerDiscriminator` (`model.0`, `model.2`,
/// `model.3`, …), with `BatchNorm2d` (affine, running statistics) after every convolution but the first and the
/// last, and those convolutions without bias. For pix2pix's conditional discriminator `inputChannels` is MR
/// channels + CT channels (it judges the pair cat([MR, CT])).
public final class BatchNormPatchDiscriminator: SequentialNetwork, @unchecked Sendable {
    public let configuration: DiscriminatorConfiguration

    public init(_ configuration: DiscriminatorConfiguration) {
        self.configuration = configuration
        let c = configuration, ndf = c.ndf
        var layers: [Layer] = []
        layers.append(Conv2d(name: "model.0", inputChannels: c.inputChannels, outputChannels: ndf, kernelSize: 4, stride: 2, padding: 1))
        layers.append(Activation(.leakyReLU(slope: 0.2)))
        var index = 2, mult = 1
        func stage(to widened: Int, stride: Int) {
            layers.append(Conv2d(name: "model.\(index)", inputChannels: ndf * mult, outputChannels: ndf * widened,
                                 kernelSize: 4, stride: stride, padding: 1, bias: false))
            layers.append(BatchNorm2d(name: "model.\(index + 1)", channels: ndf * widened))
            layers.append(Activation(.leakyReLU(slope: 0.2)))
            mult = widened
            index += 3
        }
        for n in 1..<max(1, c.layers) where c.layers > 1 { stage(to: min(1 << n, 8), stride: 2) }
        stage(to: min(1 << c.layers, 8), stride: 1)
        layers.append(Conv2d(name: "model.\(index)", inputChannels: ndf * mult, outputChannels: 1, kernelSize: 4, stride: 1, padding: 1))
        super.init(network: Sequential(layers))
    }
}
