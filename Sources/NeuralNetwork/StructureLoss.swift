import Foundation

/// The modality-independent neighbourhood descriptor, MIND (Heinrich et al. 2012, Med. Image Anal. 16:1423, eq. 4),
/// in 2-D on the four-neighbourhood, and the structure-consistency loss of Yang et al. 2018 ("Unpaired brain
/// MR-to-CT synthesis using a structure-constrained CycleGAN", DLMIA, eq. 3): the mean absolute difference between
/// the descriptors of an image and of its translation. MIND describes which neighbours a pixel's patch resembles,
/// not the intensities, so MR and CT of the same anatomy have similar descriptors although their contrasts differ.
///
/// For a pixel x and neighbour offset r: D_r(x) = Σ_p w(p) (I(x+p) − I(x+r+p))² with w the 3 × 3 binomial patch
/// weights (a Gaussian of σ ≈ 0.7 pixels), V(x) = mean_r D_r(x) + ε, and
/// MIND_r(x) = exp(−(D_r(x) − min_s D_s(x)) / V(x)), which is Heinrich's exp(−D_r/V) divided by its maximum over r.
/// Descriptors are computed where every patch and neighbour is inside the image: a margin of `distance` + 1 pixels.
///
/// One instance keeps its scratch buffers between calls (no allocation once shapes are stable); not thread-safe, so
/// use one per thread.
public final class StructureLoss: @unchecked Sendable {
    /// The neighbours' distance in pixels.
    public let distance: Int
    /// Added to the local variance estimate V so that flat regions (air, noise-only background) do not divide by 0.
    public let epsilon: Float

    private var scratch: [Float] = []

    public init(distance: Int = 1, epsilon: Float = 1e-3) {
        precondition(distance >= 1, "StructureLoss: distance must be at least 1")
        precondition(epsilon > 0, "StructureLoss: epsilon must be positive")
        self.distance = distance
        self.epsilon = epsilon
        offsets = [(0, distance), (0, -distance), (distance, 0), (-distance, 0)]
    }

    /// The four neighbour offsets (dy, dx).
    private let offsets: [(Int, Int)]
    private var margin: Int { distance + 1 }
    private static let weights: [Float] = [1, 2, 1, 2, 4, 2, 1, 2, 1].map { $0 / 16 }

    /// The shape of the descriptor of an N × C × H × W image: N × 4 × (H − 2m) × (W − 2m), m = distance + 1.
    public func descriptorShape(for shape: [Int]) -> [Int] {
        precondition(shape.count == 4, "StructureLoss: expected N × C × H × W, got \(shape)")
        return [shape[0], 4, shape[2] - 2 * margin, shape[3] - 2 * margin]
    }

    /// MIND of channel `channel` of `image` (N × C × H × W), written into `descriptor` (`descriptorShape`).
    public func descriptor(of image: Tensor, channel: Int = 0, into descriptor: Tensor) {
        _ = run(image, channel: channel, descriptor: descriptor, target: nil, scale: 0, gradient: nil, accumulate: false)
    }

    /// The structure-consistency loss scale × mean |MIND(image) − target| over all descriptor entries, with
    /// `target` a descriptor from `descriptor(of:)`. When `gradient` (the image's shape) is given, writes
    /// scale × dLoss/dImage into its channel `channel` (adding when `accumulate` is true; other channels untouched).
    /// The derivative of |·| at 0 is 0 and min_s passes its gradient to the first minimal neighbour, as in PyTorch.
    @discardableResult
    public func loss(_ image: Tensor, channel: Int = 0, target: Tensor, scale: Float = 1, gradient: Tensor? = nil,
                     accumulate: Bool = false) -> Float {
        run(image, channel: channel, descriptor: nil, target: target, scale: scale, gradient: gradient,
            accumulate: accumulate)
    }

    private func run(_ image: Tensor, channel: Int, descriptor: Tensor?, target: Tensor?, scale: Float,
                     gradient: Tensor?, accumulate: Bool) -> Float {
        let shape = image.shape
        let outShape = descriptorShape(for: shape)
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (oh, ow) = (outShape[2], outShape[3])
        precondition(channel >= 0 && channel < c, "StructureLoss: channel \(channel) of \(c)")
        precondition(oh > 0 && ow > 0, "StructureLoss: image \(h) × \(w) is too small for distance \(distance)")
        if let descriptor { precondition(descriptor.shape == outShape, "StructureLoss: descriptor \(descriptor.shape), expected \(outShape)") }
        if let target { precondition(target.shape == outShape, "StructureLoss: target \(target.shape), expected \(outShape)") }
        if let gradient { precondition(gradient.shape == shape, "StructureLoss: gradient \(gradient.shape), expected \(shape)") }

        // Scratch: squared differences S_r (4 planes, H × W), D_r and E_r (4 × plane of the descriptor each),
        // V, the index of min_r D_r, and the gradient planes of S_r.
        let plane = h * w, inner = oh * ow
        let needed = 4 * plane + 8 * inner + 2 * inner + 4 * plane
        if scratch.count < needed { scratch = [Float](repeating: 0, count: needed) }
        let m = margin, weights = Self.weights, eps = epsilon
        let count = Float(n * 4 * inner)
        var total = 0.0

        scratch.withUnsafeMutableBufferPointer { buffer in
            let s = buffer.baseAddress!
            let dPlanes = s + 4 * plane, ePlanes = dPlanes + 4 * inner
            let variance = ePlanes + 4 * inner, argmin = variance + inner
            let gS = argmin + inner
            for b in 0..<n {
                let img = image.pointer + (b * c + channel) * plane
                // S_r(y) = (I(y) − I(y + r))² wherever y + r is inside the image (0 elsewhere; never read).
                for (r, (dy, dx)) in offsets.enumerated() {
                    let sr = s + r * plane
                    for y in max(0, -dy)..<min(h, h - dy) {
                        for x in max(0, -dx)..<min(w, w - dx) {
                            let d = img[y * w + x] - img[(y + dy) * w + x + dx]
                            sr[y * w + x] = d * d
                        }
                    }
                }
                // D_r: 3 × 3 weighted patch sums at the descriptor's pixels; V, min and MIND.
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let y = oy + m, x = ox + m, o = oy * ow + ox
                        var mean: Float = 0, minimum = Float.infinity, best = 0
                        for r in 0..<4 {
                            let sr = s + r * plane
                            var sum: Float = 0
                            for py in -1...1 {
                                let row = sr + (y + py) * w + x
                                sum += weights[(py + 1) * 3] * row[-1] + weights[(py + 1) * 3 + 1] * row[0]
                                    + weights[(py + 1) * 3 + 2] * row[1]
                            }
                            dPlanes[r * inner + o] = sum
                            mean += sum
                            if sum < minimum { minimum = sum; best = r }
                        }
                        let v = mean / 4 + eps
                        variance[o] = v
                        argmin[o] = Float(best)
                        for r in 0..<4 { ePlanes[r * inner + o] = (dPlanes[r * inner + o] - minimum) / v }
                    }
                }
                if let descriptor {
                    let out = descriptor.pointer + b * 4 * inner
                    for i in 0..<(4 * inner) { out[i] = Foundation.exp(-ePlanes[i]) }
                    continue
                }
                guard let target else { continue }
                let t = target.pointer + b * 4 * inner
                var sum = 0.0
                for i in 0..<(4 * inner) { sum += Double(abs(Foundation.exp(-ePlanes[i]) - t[i])) }
                total += sum
                guard let gradient else { continue }

                // Backward. gE_r = −MIND_r · g·sign(MIND_r − T_r); D_r enters E_r directly (1/V), through
                // min_s D_s (−1/V, to the argmin only) and through V (−E_r/V, spread as 1/4 to every D_s).
                let g = scale / count
                for i in 0..<(4 * plane) { gS[i] = 0 }
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let o = oy * ow + ox, v = variance[o]
                        var sumGE: Float = 0, gV: Float = 0
                        for r in 0..<4 {
                            let e = ePlanes[r * inner + o], mind = Foundation.exp(-e)
                            let diff = mind - t[r * inner + o]
                            let ge = diff > 0 ? -mind * g : (diff < 0 ? mind * g : 0)
                            ePlanes[r * inner + o] = ge  // E_r is not needed any more: keep gE_r in its place
                            sumGE += ge
                            gV -= ge * e / v
                        }
                        let best = Int(argmin[o])
                        let y = oy + m, x = ox + m
                        for r in 0..<4 {
                            let ge = ePlanes[r * inner + o]
                            var gD = ge / v + gV / 4
                            if r == best { gD -= sumGE / v }
                            // Scatter through the patch sum: gS_r(x + p) += w(p) gD_r(x).
                            let gsr = gS + r * plane
                            for py in -1...1 {
                                let row = gsr + (y + py) * w + x
                                row[-1] += weights[(py + 1) * 3] * gD
                                row[0] += weights[(py + 1) * 3 + 1] * gD
                                row[1] += weights[(py + 1) * 3 + 2] * gD
                            }
                        }
                    }
                }
                let gi = gradient.pointer + (b * c + channel) * plane
                if !accumulate { for i in 0..<plane { gi[i] = 0 } }
                for (r, (dy, dx)) in offsets.enumerated() {
                    let gsr = gS + r * plane
                    for y in max(0, -dy)..<min(h, h - dy) {
                        for x in max(0, -dx)..<min(w, w - dx) {
                            let gs = gsr[y * w + x]
                            if gs == 0 { continue }
                            let i = y * w + x, j = (y + dy) * w + x + dx
                            let d = 2 * (img[i] - img[j]) * gs
                            gi[i] += d
                            gi[j] -= d
                        }
                    }
                }
            }
        }
        return Float(total / Double(count)) * scale
    }
}
