/// Which convolution passes run on oneDNN rather than MR2CT's own kernels under `ConvolutionAlgorithm.automatic`: a
/// fixed rule from per-layer measurements on the target machine (`mr2ct bench --layers`, Pipelines/bench/PERFORMANCE.md
/// "Per-layer choice"), so the choice — and the rounding — never depends on timing noise at run time.
///
/// Measured 2026-12-02 on the team VM (2-core AMD EPYC, Zen 4, AVX-512 with AVX512 BF16; oneDNN 2.6.3 picks
/// `jit:avx512_core`), fastest of 9 calls, single-threaded (what a training step's two paired chains run), for the
/// 96²/ngf 16, 128²/ngf 32 and 256²/ngf 64 generators and their PatchGANs. Float32: oneDNN is 0.5–1.0× of im2col +
/// OpenBLAS on the strided 3×3 and 4×4 convolutions (all passes), 0.35–0.75× on the one-input-channel layers' forward
/// and weight gradient, 0.75–0.86× on the PatchGAN's 4×4 stride-1 layer forward and backward-data, 0.45–0.9× on the
/// transposed convolutions' backward passes and 0.3–0.7× on the PatchGAN head's weight gradient; it is slower on the
/// residual 3×3 forward and backward-data (Winograd, 1.1–2.2×), the one-input-channel backward-data (5–10×), the
/// generator's 7×7 head (2.2–5.4×, all passes) and the transposed forward (1.0–1.5×). The residual 3×3 weight
/// gradient is 0.82× on oneDNN at 96² and within 5 % at 128² and 256²; it stays on MR2CT's kernels.
/// (Until 2026-12-02 the rule was the Zen 3's, where oneDNN also took the generator head's weight gradient, which is 2.2–3.7×
/// slower on this CPU, and not the one-input-channel weight gradient or the 4×4 stride-1 forward.)
/// oneDNN runs single-threaded inside a fork or paired chain and on all compute threads outside one
/// (`OneDNNConvolution.threads(for:)`). The rule depends on the shape only, never on the thread count, so a
/// computation rounds the same whether or not it runs inside a paired chain.
enum ConvolutionBackendPolicy {
    /// A `Conv2d` pass; `outputSize` = output height × width.
    static func convolutionUsesOneDNN(_ pass: ConvolutionPass, inputChannels: Int, outputChannels: Int, kernel: Int,
                                      stride: Int, outputSize: Int) -> Bool {
        if outputChannels == 1 {
            // The PatchGAN head (4×4): its backward passes (weight gradient 0.3–0.7×; backward-data 0.37× at 96²,
            // 1.2× at 256², 1–2 ms). The generator's 7×7 head: never (2.2–5.4×).
            return kernel == 4 && pass != .forward
        }
        if inputChannels == 1 {
            // The first layers (7×7 generator, 4×4 PatchGAN): forward 0.55–0.75×, weight gradient 0.35–0.75×;
            // backward-data 5–10× slower.
            return pass != .backwardData
        }
        if stride > 1 {
            // Down-sampling 3×3 and PatchGAN 4×4 stride 2: every pass 0.5–1.0×.
            return true
        }
        // Stride 1 between many channels: the residual 3×3 stay on Winograd; the PatchGAN 4×4 stride-1 layer runs
        // its forward (0.81–0.86×) and backward-data (0.75–0.86×) on oneDNN, its weight gradient (0.97–1.08×) not.
        return kernel == 4 && pass != .backwardWeights
    }

    /// A `ConvTranspose2d` pass; `inputSize` = input height × width.
    static func transposedUsesOneDNN(_ pass: ConvolutionPass, inputChannels: Int, outputChannels: Int, kernel: Int,
                                     stride: Int, inputSize: Int) -> Bool {
        // Backward-data and backward-weights 0.45–0.9×; forward 1.0–1.5× (stays on GEMM + col2im).
        pass != .forward
    }

    /// With native bf16 (`Precision.bf16.isNative`), whether a `Conv2d` pass runs on oneDNN's bf16 kernel rather than
    /// on the float32 kernels `convolutionUsesOneDNN` picks, fed bf16-rounded operands (bf16's numerics either way:
    /// bf16 operands, float32 accumulation). oneDNN's bf16 kernels are 0.2–0.8× of MR2CT's float32 ones on most
    /// passes, but not on the generator's 7×7 head (1.0–2.8× MR2CT's float32 kernels, every pass: 36 against 17 ms
    /// forward at 256²) or on the one-input-channel layers' backward-data pass (3.5–5×): those are emulated.
    /// The residual blocks' inference on large images has its own rule (`Conv2d.bfloat16UsesWinograd`).
    static func convolutionUsesOneDNNBFloat16(_ pass: ConvolutionPass, inputChannels: Int, outputChannels: Int,
                                               kernel: Int) -> Bool {
        if outputChannels == 1 && kernel == 7 { return false }
        if inputChannels == 1 && pass == .backwardData { return false }
        return true
    }
}
