import Testing
import MR2CTSupport
@testable import NeuralNetwork

/// The direct kernel of the one-output-channel convolutions (the generator's 7×7 head) pads its input a group of
/// channels at a time.
@Suite struct DirectKernelTests {
    /// Any grouping gives the same bits (each output row sums the channels in order), and the result is the
    /// convolution with reflection padding computed by hand in double precision.
    @Test func paddingAGroupOfChannelsAtATimeGivesTheSameBitsAsTheWholeInput() {
        var random = SeededRandom(seed: 31)
        let (c, h, w, k, p) = (10, 20, 18, 7, 3)
        let head = Conv2d(name: "head", inputChannels: c, outputChannels: 1, kernelSize: k, padding: p, paddingMode: .reflect)
        for i in 0..<head.weight.value.count { head.weight.value.data[i] = Float(random.nextNormal()) * 0.05 }
        head.bias!.value.data[0] = 0.25
        let x = Tensor(shape: [2, c, h, w])
        for i in 0..<x.count { x.data[i] = Float(random.nextNormal()) }
        let budget = Conv2d.directPaddedBudget
        defer { Conv2d.directPaddedBudget = budget }
        var outputs: [[Float]] = []
        // Whole input (10 × 26 × 24 floats), 3 channels per group (the last group of 1), 1 channel per group.
        for floats in [1 << 18, 3 * (h + 2 * p) * (w + 2 * p), 1] {
            Conv2d.directPaddedBudget = floats
            outputs.append(head.forward(x, record: LayerRecord(), mode: .inference).toArray())
        }
        #expect(outputs[1] == outputs[0] && outputs[2] == outputs[0])
        func reflect(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i) }
        var worst = 0.0
        for n in 0..<2 {
            for oy in 0..<h {
                for ox in 0..<w {
                    var s = 0.25
                    for ch in 0..<c {
                        for ky in 0..<k {
                            for kx in 0..<k {
                                let iy = reflect(oy + ky - p, h), ix = reflect(ox + kx - p, w)
                                s += Double(head.weight.value.data[(ch * k + ky) * k + kx])
                                    * Double(x.data[((n * c + ch) * h + iy) * w + ix])
                            }
                        }
                    }
                    worst = max(worst, abs(Double(outputs[0][(n * h + oy) * w + ox]) - s))
                }
            }
        }
        #expect(worst < 1e-5, "largest difference from the hand-computed convolution: \(worst)")
    }
}
