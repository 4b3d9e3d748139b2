/// The arithmetic of the convolutions (the bulk of the work): the one place the choice is made and validated.
///
/// `.f32` is float32 throughout and numerically PyTorch's float32 network (the default; the goldens hold it to
/// PyTorch float64). `.bf16` is mixed precision as PyTorch's `torch.autocast("cpu", dtype=torch.bfloat16)` does
/// it for convolutions: each convolution's operands (input, weights, and in training the incoming gradient) are
/// rounded to bfloat16 (8 significant bits, round to nearest even), products are accumulated in float32 and
/// results are float32; everything else — normalisation, activations, losses, the f32 master weights, Adam's
/// state, weight-gradient accumulation — stays float32. Where oneDNN has native bf16 kernels on the CPU
/// (AVX512 BF16, AMX) they run the convolutions; elsewhere the same arithmetic is emulated (operands rounded,
/// float32 kernels), which gives bf16's numerics without its speed — `Precision.bf16.isNative` says which.
public enum Precision: String, Codable, CaseIterable, Sendable {
    case f32
    case bf16

    /// The default: float32, PyTorch's numerics.
    public static let `default` = Precision.f32

    /// Whether this precision runs on native kernels of this CPU (always for f32).
    public var isNative: Bool {
        switch self {
        case .f32: true
        case .bf16: OneDNNConvolution.nativeBFloat16
        }
    }

    /// How the convolutions run on this machine, for benchmark records: "f32", "bf16-onednn" or "bf16-emulated".
    public var implementation: String {
        switch self {
        case .f32: "f32"
        case .bf16: isNative ? "bf16-onednn" : "bf16-emulated"
        }
    }
}

/// bfloat16 rounding of float32 buffers (the upper 16 bits of an IEEE float32, round to nearest even; NaN kept
/// NaN), as `torch.Tensor.to(torch.bfloat16)` rounds.
package enum BFloat16 {
    /// The float32 nearest to `x` with an 8-bit significand.
    @inline(__always)
    package static func round(_ x: Float) -> Float {
        let bits = x.bitPattern
        if x.isNaN { return x }
        let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000
        return Float(bitPattern: rounded)
    }

    /// dst[i] = round(src[i]) (dst may equal src).
    ///
    /// A plain loop over the scalar `round(_:)`, which the compiler inlines and vectorises (a compare and a blend per
    /// vector): 0.11 ms per million values on one core of the team VM. The same arithmetic written with
    /// `SIMD16<UInt32>`, its `.>` mask and `replace(with:where:)` compiled to per-lane code and took 7.4 ms, which made
    /// bf16 rounding 16 % of a bf16 whole-volume conversion (`perf record`, 2026-12-02).
    package static func round(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, minimumPerThread: 1 << 18) { range in
            for i in range { dst[i] = round(src[i]) }
        }
    }
}
