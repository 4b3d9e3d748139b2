import CDNNL

/// The passes of a convolution layer, each of which may run on its own backend.
package enum ConvolutionPass: Int, CaseIterable, Sendable {
    case forward
    case backwardData
    case backwardWeights

    var bridgeFlag: Int32 {
        switch self {
        case .forward: Int32(MR2CT_DNNL_FORWARD)
        case .backwardData: Int32(MR2CT_DNNL_BACKWARD_DATA)
        case .backwardWeights: Int32(MR2CT_DNNL_BACKWARD_WEIGHTS)
        }
    }
}

/// The geometry of one oneDNN convolution: a `Conv2d` (zero padding only: reflection is done by the caller into
/// a padded copy) or a `ConvTranspose2d` (PyTorch weight layout `in × out × k × k`, `padEnd` = padding − output
/// padding), with the arithmetic and thread count its primitives are built for.
struct OneDNNShape: Hashable {
    var transposed: Bool
    var batch: Int
    var inputChannels: Int, inputHeight: Int, inputWidth: Int
    var outputChannels: Int, outputHeight: Int, outputWidth: Int
    var kernel: Int, stride: Int, padBegin: Int, padEnd: Int
    var hasBias: Bool
    var precision: Precision
    var threads: Int
}

/// A convolution's oneDNN primitives (forward, backward-data, backward-weights as asked) behind the CDNNL bridge,
/// on plain NCHW float buffers. oneDNN keeps its own blocked layouts and reorders at the edges; the reordered
/// weights are reused while `weightsVersion` (a fingerprint of the weights) is unchanged.
final class OneDNNConvolution: @unchecked Sendable {
    private let handle: OpaquePointer
    let shape: OneDNNShape

    /// The threads of oneDNN's calls for `pass`: one inside a fork or paired chain (a training step's two chains,
    /// conversion's one slice per core) and for the backward passes (`ConvolutionBackendPolicy` says why); a forward
    /// pass outside them — one slice inferred on its own, as `mr2ct bench` times it — on all compute threads, as
    /// MR2CT's own kernels do there (with native bf16 every convolution runs on oneDNN, and on one thread such a call
    /// left the second core idle: 256² inference 0.67 s against f32's 0.38 s). oneDNN's forward convolutions split
    /// the output, not the reduction, so the thread count does not change their rounding.
    static func threads(for pass: ConvolutionPass) -> Int {
        pass == .forward && !ComputeThreads.serial ? ComputeThreads.count : 1
    }

    /// nil when oneDNN has no implementation of this convolution on this CPU (bf16 without AVX512 BF16).
    init?(_ s: OneDNNShape, passes: [ConvolutionPass]) {
        var c = mr2ct_dnnl_shape(
            transposed: s.transposed ? 1 : 0, batch: Int32(s.batch),
            in_channels: Int32(s.inputChannels), in_height: Int32(s.inputHeight), in_width: Int32(s.inputWidth),
            out_channels: Int32(s.outputChannels), out_height: Int32(s.outputHeight), out_width: Int32(s.outputWidth),
            kernel: Int32(s.kernel), stride: Int32(s.stride), pad_begin: Int32(s.padBegin), pad_end: Int32(s.padEnd),
            has_bias: s.hasBias ? 1 : 0, precision: Int32(s.precision == .bf16 ? MR2CT_DNNL_BF16.rawValue : MR2CT_DNNL_F32.rawValue))
        let flags = passes.reduce(Int32(0)) { $0 | $1.bridgeFlag }
        guard let h = mr2ct_dnnl_create(&c, flags, Int32(s.threads)) else { return nil }
        handle = h
        shape = s
    }

    deinit { mr2ct_dnnl_destroy(handle) }

    /// The oneDNN implementation chosen for `pass` ("jit:avx2", ...).
    func implementation(_ pass: ConvolutionPass) -> String {
        String(cString: mr2ct_dnnl_implementation(handle, pass.bridgeFlag))
    }

    var byteCount: Int { Int(mr2ct_dnnl_bytes(handle)) }

    func forward(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, weightsVersion: UInt64,
                 bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>) {
        // On several threads the call runs OpenMP's: the compute pool's workers stop spinning for them.
        if shape.threads > 1 { ComputePool.shared.park() }
        let status = mr2ct_dnnl_forward(handle, x, weights, weightsVersion, bias, y)
        precondition(status == 0, "oneDNN forward convolution failed (\(shape))")
    }

    func backwardData(_ dy: UnsafePointer<Float>, weights: UnsafePointer<Float>, weightsVersion: UInt64,
                      _ dx: UnsafeMutablePointer<Float>) {
        let status = mr2ct_dnnl_backward_data(handle, dy, weights, weightsVersion, dx)
        precondition(status == 0, "oneDNN backward-data convolution failed (\(shape))")
    }

    /// dw += dL/dw.
    func backwardWeights(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, accumulatingInto dw: UnsafeMutablePointer<Float>) {
        let status = mr2ct_dnnl_backward_weights(handle, x, dy, dw)
        precondition(status == 0, "oneDNN backward-weights convolution failed (\(shape))")
    }
}

extension OneDNNConvolution {
    /// The transient buffers (blocked activation copies, scratchpads) the bridge holds between calls: one per call
    /// that ran at the same time as others, not one per thread that ever called (CDNNL's shim.c).
    static var transientBuffers: (count: Int, bytes: Int) {
        var bytes: Int64 = 0
        let count = mr2ct_dnnl_transient_buffers(&bytes)
        return (Int(count), Int(bytes))
    }

    /// Whether oneDNN runs bfloat16 convolutions natively on this CPU (AVX512 BF16 or AMX): probed once by
    /// building a small bf16 primitive.
    static let nativeBFloat16: Bool = {
        let probe = OneDNNShape(transposed: false, batch: 1, inputChannels: 16, inputHeight: 8, inputWidth: 8,
                                outputChannels: 16, outputHeight: 8, outputWidth: 8, kernel: 3, stride: 1,
                                padBegin: 1, padEnd: 1, hasBias: true, precision: .bf16, threads: 1)
        return OneDNNConvolution(probe, passes: ConvolutionPass.allCases) != nil
    }()
}
