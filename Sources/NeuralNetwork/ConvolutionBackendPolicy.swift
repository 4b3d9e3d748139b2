/// Which convolution passes run on oneDNN (float32) rather than MR2CT's own kernels under
/// `ConvolutionAlgorithm.automatic`: a fixed rule from per-layer measurements on the target machine
/// (`mr2ct bench --layers`, Pipelines/bench/PERFORMANCE.md "Per-layer choice"), so the choice — and the float32
/// rounding — never depends on timing noise at run time.
///
/// Measured 2026-12-01 on the 2-core AMD EPYC (Zen 3, AVX2; oneDNN 2.6.3 picks its `jit:avx2` kernels),
/// fastest of 18 calls, single-threaded (what a training step's two paired chains run): oneDNN is 0.5–0.7× of
/// im2col + OpenBLAS on the strided 3×3 (generator down-sampling) and 4×4 (PatchGAN) convolutions forward and
/// backward-data, 0.6× on the transposed convolutions' backward passes, 0.2–0.3× on the one-output-channel
/// PatchGAN head's backward passes and 0.75× on the one-input-channel 7×7 forward; it is slower on the residual
/// 3×3 convolutions (Winograd, 1.06–1.10×), the transposed convolutions' forward (1.0–2.2×), the 7×7 head
/// (1.7–2.0×) and the weight gradients of one-channel inputs (3–4.6×). oneDNN always runs single-threaded: with
/// 2 threads its OpenMP team stalls whenever a core is taken by another process (single calls of 30–60 ms instead
/// of 0.3 ms on the shared machine), and one thread still beats MR2CT's two on the passes chosen for inference
/// (down-sampling forward 0.36–0.44×, first 7×7 forward 0.67×). The rule depends on the shape only, never on the
/// thread count, so a computation rounds the same whether or not it runs inside a paired chain.
enum ConvolutionBackendPolicy {
    /// A `Conv2d` pass; `outputSize` = output height × width.
    static func convolutionUsesOneDNN(_ pass: ConvolutionPass, inputChannels: Int, outputChannels: Int, kernel: Int,
                                      stride: Int, outputSize: Int) -> Bool {
        if outputChannels == 1 {
            // The PatchGAN head (4×4): backward 0.2–0.3×. The generator's 7×7 head: slower on oneDNN except its
            // weight gradient (0.8×).
            return kernel == 4 ? pass != .forward : pass == .backwardWeights
        }
        if inputChannels == 1 {
            // The first layers (7×7 generator, 4×4 PatchGAN, one channel): oneDNN's forward 0.67–0.75×; its
            // weight gradient is 3–4.6× slower.
            return pass == .forward
        }
        if stride > 1 {
            // Down-sampling 3×3 and PatchGAN 4×4 stride 2: forward and backward-data 0.5–0.8×, weight gradient
            // 0.7–0.9×.
            return true
        }
        // Stride 1 between many channels: the residual 3×3 stay on Winograd; the PatchGAN 4×4 stride-1 layer is
        // faster on oneDNN for its backward-data pass (0.85×) only.
        return kernel == 4 && pass == .backwardData
    }

    /// A `ConvTranspose2d` pass; `inputSize` = input height × width.
    static func transposedUsesOneDNN(_ pass: ConvolutionPass, inputChannels: Int, outputChannels: Int, kernel: Int,
                                     stride: Int, inputSize: Int) -> Bool {
        // Backward-data 0.6×, backward-weights 0.6–0.9×; forward 1.0–2.2× (stays on GEMM + col2im).
        pass != .forward
    }
}
