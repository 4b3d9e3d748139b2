import Foundation

/// 2-D convolution (PyTorch `nn.Conv2d`, cross-correlation) with square kernel, stride, padding by zeros or by
/// reflection (`nn.ReflectionPad2d(p)` + `nn.Conv2d(padding: 0)` folded into one gather), optional bias.
///
/// Computed as im2col + SGEMM: Y (Cout × H'W') = W (Cout × Cin·k·k) · cols (Cin·k·k × H'W'); backward-data as
/// col2im(Wᵀ·dY), backward-weights as dY·colsᵀ. The column buffer is tiled over output rows when large.
/// A single output channel with stride 1 (the generator's last 7×7 conv, PatchGAN's last conv) uses a direct
/// kernel instead: a GEMM with M = 1 runs far below the machine's rate. 3×3 stride-1 convolutions between
/// enough channels (the residual blocks) run forward and backward-data by Winograd (`Winograd3x3`): F(4×4, 3×3) for
/// inference on images of `winogradF4MinimumSide` and more, F(2×2, 3×3) otherwise (`winogradTile`).
public final class Conv2d: Layer, ParameterContainer, SharedActivationReader {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let paddingMode: PaddingMode
    /// `outputChannels × inputChannels × k × k`.
    public let weight: Parameter
    public let bias: Parameter?
    /// How the passes are computed; `.automatic` runs a pass on oneDNN where `ConvolutionBackendPolicy` says it is
    /// faster, else on MR2CT's kernels, Winograd where it applies and pays (3×3, stride 1, at least
    /// `Conv2d.winogradMinimumChannels` channels in and out).
    public var algorithm: ConvolutionAlgorithm = .automatic
    /// The arithmetic of this layer's convolutions (`Precision`; default float32).
    public var precision: Precision = .f32

    /// Fewer channels than this and im2col's single GEMM beats Winograd's sixteen small ones.
    public static let winogradMinimumChannels = 32

    /// `name` is the PyTorch module path ("model.1"); parameters are "<name>.weight" and "<name>.bias".
    public init(name: String, inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Int = 0, paddingMode: PaddingMode = .zeros, bias: Bool = true) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.paddingMode = paddingMode
        weight = Parameter(name: name + ".weight", shape: [outputChannels, inputChannels, kernelSize, kernelSize])
        self.bias = bias ? Parameter(name: name + ".bias", shape: [outputChannels]) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    public func outputShape(for s: [Int]) -> [Int] {
        [s[0], outputChannels, (s[2] + 2 * padding - kernelSize) / stride + 1, (s[3] + 2 * padding - kernelSize) / stride + 1]
    }

    func geometry(_ s: [Int]) -> ConvGeometry {
        let o = outputShape(for: s)
        return ConvGeometry(channels: inputChannels, height: s[2], width: s[3], kernelHeight: kernelSize,
                            kernelWidth: kernelSize, stride: stride, padding: padding, paddingMode: paddingMode,
                            outputHeight: o[2], outputWidth: o[3])
    }

    var usesDirectKernel: Bool { outputChannels == 1 && stride == 1 }

    /// The Winograd algorithm of this layer's passes on an `height × width` input, nil for im2col. Under
    /// `.automatic` and `.native`: F(4×4, 3×3) for inference passes on images that give it enough tiles to fill
    /// the GEMMs (`Conv2d.winogradF4MinimumSide`), F(2×2, 3×3) for smaller images and for the training passes
    /// (forward and backward-data). Measured at 256², ngf 64 (`mr2ct bench`, 2026-12-01): F(4×4) made inference
    /// 0.80–0.91× as long, but a training step at most a few per cent shorter (13.26 against 13.26–13.62 s under
    /// `.automatic`; 14.01–14.19 against 14.28–14.83 s with oneDNN off) while its kernels, cached per generator
    /// for the forward and the backward-data pass, took 350 MB more.
    func winogradTile(height: Int, width: Int, mode: ForwardMode) -> WinogradTile? {
        guard kernelSize == 3 && stride == 1 && !usesDirectKernel else { return nil }
        switch algorithm {
        case .automatic, .native:
            guard min(inputChannels, outputChannels) >= Self.winogradMinimumChannels else { return nil }
            return mode == .inference && min(height, width) >= Self.winogradF4MinimumSide ? .four : .two
        case .im2col, .onednn: return nil
        case .winograd: return .two
        case .winograd4: return .four
        }
    }

    /// Whether F(2×2)'s backward passes run on the forward kernels (backward-data reads them transposed, the weight
    /// gradient is Winograd too): everywhere but under `.native`, which keeps the arithmetic of before (adjoint
    /// kernels of their own, im2col weight gradients).
    var backwardOnForwardKernels: Bool { algorithm != .native }

    /// The smallest image side on which `.automatic` and `.native` infer with F(4×4, 3×3) rather than F(2×2, 3×3).
    public static let winogradF4MinimumSide = 32

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        precondition(input.shape.count == 4 && input.shape[1] == inputChannels,
                     "Conv2d(\(weight.name)): input \(input.shape), expected N×\(inputChannels)×H×W")
        record.input = input
        let g = geometry(input.shape)
        let output = record.outputTensor(shape: outputShape(for: input.shape))
        let batch = input.shape[0]
        let dnnl = oneDNNPrimitive(.forward, batch: batch, g, workspace, mode: mode)
        let emulate = precision == .bf16 && dnnl?.shape.precision != .bf16
        let x = emulate ? roundedCopy(input.pointer, count: input.count, Workspace.Slot.bfloat16Input, workspace)
                        : UnsafePointer(input.pointer)
        let w = emulate ? roundedWeights(weight, of: self, workspace) : UnsafePointer(weight.value.pointer)
        if let dnnl {
            dnnl.forward(oneDNNSource(x, batch: batch, g, workspace), weights: w,
                         weightsVersion: Kernels.fingerprint(w, weight.value.count),
                         bias: bias.map { UnsafePointer($0.value.pointer) }, output.pointer)
            return output
        }
        let inCount = inputChannels * g.height * g.width, outCount = outputChannels * g.gridCount
        if let tile = winogradTile(height: g.height, width: g.width, mode: mode) {
            let kernels = winogradKernels(w, adjoint: false, tile: tile, workspace: workspace)
            for n in 0..<batch {
                Winograd3x3.convolve(x + n * inCount, channels: inputChannels, height: g.height,
                                     width: g.width, padding: padding, paddingMode: paddingMode, kernels: kernels,
                                     outputChannels: outputChannels, bias: bias.map { UnsafePointer($0.value.pointer) },
                                     tile: tile, output: output.pointer + n * outCount, workspace: workspace)
            }
            return output
        }
        for n in 0..<batch {
            let xn = x + n * inCount, y = output.pointer + n * outCount
            if usesDirectKernel {
                directForward(xn, w, y, g, workspace)
            } else {
                // The bias is written first and the GEMM adds onto it (beta 1): one pass over Y fewer.
                if let bias { fillBias(bias.value.pointer, into: y, channels: outputChannels, planeSize: g.gridCount) }
                let tile = g.rowsPerTile
                var oy0 = 0
                while oy0 < g.outputHeight {
                    let oy1 = min(g.outputHeight, oy0 + tile), nt = (oy1 - oy0) * g.outputWidth
                    let cols = workspace.buffer(Workspace.Slot.columns, count: g.rows * nt)
                    g.im2col(xn, cols, oy0: oy0, oy1: oy1)
                    BLAS.sgemmSplitColumns(transA: false, m: outputChannels, n: nt, k: g.rows,
                                           a: w, lda: g.rows, b: cols, ldb: nt,
                                           beta: bias == nil ? 0 : 1, c: y + oy0 * g.outputWidth, ldc: g.gridCount)
                    oy0 = oy1
                }
            }
        }
        if usesDirectKernel, let bias {
            addBias(bias.value.pointer, to: output.pointer, planes: batch, channels: outputChannels, planeSize: g.gridCount)
        }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        let input = record.input!
        let g = geometry(input.shape)
        let batch = input.shape[0], inCount = inputChannels * g.height * g.width, outCount = outputChannels * g.gridCount
        if parameterGradients, let bias {
            accumulateBiasGradient(gradOutput, into: bias.gradient.pointer, planes: batch, channels: outputChannels, planeSize: g.gridCount)
        }
        if !parameterGradients && gradInput == nil { return }
        let dataDNNL = gradInput == nil ? nil : oneDNNPrimitive(.backwardData, batch: batch, g, workspace)
        let weightsDNNL = parameterGradients ? oneDNNPrimitive(.backwardWeights, batch: batch, g, workspace) : nil
        let (dy, x, w) = backwardOperands(precision: precision, gradOutput: gradOutput, count: batch * outCount, input: input,
                                          weight: weight, layer: self, data: gradInput == nil ? nil : dataDNNL.map { $0.shape.precision } ?? .f32,
                                          weights: parameterGradients ? weightsDNNL.map { $0.shape.precision } ?? .f32 : nil,
                                          workspace)
        if let gradInput, let dataDNNL {
            let reflect = paddingMode == .reflect && padding > 0
            let ph = g.height + 2 * padding, pw = g.width + 2 * padding
            let dsrc = reflect ? workspace.buffer(Workspace.Slot.oneDNNPadded, count: batch * inputChannels * ph * pw) : gradInput
            dataDNNL.backwardData(dy, weights: w, weightsVersion: Kernels.fingerprint(w, weight.value.count), dsrc)
            if reflect {
                for n in 0..<batch { g.unpad(dsrc + n * inputChannels * ph * pw, into: gradInput + n * inCount) }
            }
        }
        if let weightsDNNL {
            weightsDNNL.backwardWeights(oneDNNSource(x, batch: batch, g, workspace), dy, accumulatingInto: weight.gradient.pointer)
        }
        let nativeGradInput = dataDNNL == nil ? gradInput : nil
        let nativeWeights = parameterGradients && weightsDNNL == nil
        if nativeGradInput == nil && !nativeWeights { return }
        let winogradTile = winogradTile(height: g.height, width: g.width, mode: .training)
        // F(2×2) computes the weight gradient too (`Winograd3x3.weightGradient`); F(4×4) leaves it to the columns.
        let winogradWeights = nativeWeights && winogradTile == .two && backwardOnForwardKernels
        let columnWeights = nativeWeights && !winogradWeights
        if winogradWeights {
            for n in 0..<batch {
                Winograd3x3.weightGradient(x + n * inCount, channels: inputChannels, height: g.height, width: g.width,
                                           padding: padding, paddingMode: paddingMode, gradOutput: dy + n * outCount,
                                           outputChannels: outputChannels, gradWeight: weight.gradient.pointer,
                                           workspace: workspace)
            }
        }
        // The column loop computes the weight gradient and, off the Winograd path, dL/dx; Winograd's dL/dx follows.
        for n in 0..<batch where columnWeights || winogradTile == nil {
            let xn = x + n * inCount, dyn = dy + n * outCount
            let dx = winogradTile == nil ? nativeGradInput.map { $0 + n * inCount } : nil
            if usesDirectKernel {
                directBackward(xn, w, dyn, dx, g, nativeWeights, workspace)
                continue
            }
            if let dx { dx.update(repeating: 0, count: inCount) }
            let tile = g.rowsPerTile
            var oy0 = 0
            while oy0 < g.outputHeight {
                let oy1 = min(g.outputHeight, oy0 + tile), nt = (oy1 - oy0) * g.outputWidth
                let dyTile = dyn + oy0 * g.outputWidth
                if columnWeights {
                    let cols = workspace.buffer(Workspace.Slot.columns, count: g.rows * nt)
                    g.im2col(xn, cols, oy0: oy0, oy1: oy1)
                    BLAS.sgemm(transA: false, transB: true, m: outputChannels, n: g.rows, k: nt,
                               a: dyTile, lda: g.gridCount, b: cols, ldb: nt,
                               beta: 1, c: weight.gradient.pointer, ldc: g.rows)
                }
                if let dx {
                    let dcols = workspace.buffer(Workspace.Slot.columns2, count: g.rows * nt)
                    BLAS.sgemm(transA: true, transB: false, m: g.rows, n: nt, k: outputChannels,
                               a: w, lda: g.rows, b: dyTile, ldb: g.gridCount,
                               beta: 0, c: dcols, ldc: nt)
                    g.col2im(dcols, dx, oy0: oy0, oy1: oy1)
                }
                oy0 = oy1
            }
        }
        if let winogradTile, let nativeGradInput {
            winogradBackwardData(dy, w, nativeGradInput, g, batch: batch, tile: winogradTile, workspace: workspace)
        }
    }

    // MARK: oneDNN and bf16

    /// The oneDNN primitive that runs `pass`, or nil for MR2CT's own kernels: bf16 with native kernels runs on
    /// oneDNN's bf16 kernels except where `ConvolutionBackendPolicy.convolutionUsesOneDNNBFloat16` or
    /// `bfloat16UsesWinograd` say otherwise (always under `.onednn`); f32 (and emulated bf16) where `usesOneDNN`
    /// says so.
    func oneDNNPrimitive(_ pass: ConvolutionPass, batch: Int, _ g: ConvGeometry, _ workspace: Workspace,
                         mode: ForwardMode = .training) -> OneDNNConvolution? {
        let reflect = paddingMode == .reflect && padding > 0
        let ph = reflect ? g.height + 2 * padding : g.height, pw = reflect ? g.width + 2 * padding : g.width
        let pad = reflect ? 0 : padding
        func shape(_ p: Precision) -> OneDNNShape {
            OneDNNShape(transposed: false, batch: batch, inputChannels: inputChannels, inputHeight: ph, inputWidth: pw,
                        outputChannels: outputChannels, outputHeight: g.outputHeight, outputWidth: g.outputWidth,
                        kernel: kernelSize, stride: stride, padBegin: pad,
                        padEnd: (g.outputHeight - 1) * stride + kernelSize - ph - pad,
                        hasBias: bias != nil, precision: p, threads: OneDNNConvolution.threads(for: pass))
        }
        if precision == .bf16 && Precision.bf16.isNative && !bfloat16UsesWinograd(pass, g, mode: mode)
            && (algorithm == .onednn || ConvolutionBackendPolicy.convolutionUsesOneDNNBFloat16(
                pass, inputChannels: inputChannels, outputChannels: outputChannels, kernel: kernelSize)),
           let native = workspace.oneDNN(layer: self, pass: pass, shape: shape(.bf16)) { return native }
        guard usesOneDNN(pass, g) else { return nil }
        return workspace.oneDNN(layer: self, pass: pass, shape: shape(.f32))
    }

    /// With native bf16, whether `pass` runs on MR2CT's Winograd F(4×4, 3×3) (bf16-rounded operands, float32
    /// transforms and accumulation: bf16's numerics) instead of oneDNN's bf16 kernel: a residual block's inference
    /// pass on images of `bfloat16WinogradMinimumSide`² and more, where F(4×4)'s 4× fewer multiplications beat
    /// oneDNN 2.6's direct bf16 kernel. Measured with `mr2ct bench --precision bf16 --threads 2` (AMD EPYC with
    /// AVX512 BF16, 2026-12-02): 256², ngf 64 (64² blocks, 256 channels) 0.395 against 0.484 s per slice; at 128²,
    /// ngf 32 (32² blocks, 128 channels) oneDNN stays ahead, 0.026 against 0.039 s.
    func bfloat16UsesWinograd(_ pass: ConvolutionPass, _ g: ConvGeometry, mode: ForwardMode) -> Bool {
        pass == .forward && min(g.height, g.width) >= Self.bfloat16WinogradMinimumSide
            && winogradTile(height: g.height, width: g.width, mode: mode) == .four
    }

    /// The smallest image side on which native bf16 inference runs the residual blocks on Winograd F(4×4).
    public static let bfloat16WinogradMinimumSide = 64

    /// Whether `pass` runs on oneDNN in float32 for this layer at this geometry.
    func usesOneDNN(_ pass: ConvolutionPass, _ g: ConvGeometry) -> Bool {
        switch algorithm {
        case .onednn: true
        case .im2col, .winograd, .winograd4, .native: false
        case .automatic:
            ConvolutionBackendPolicy.convolutionUsesOneDNN(pass, inputChannels: inputChannels, outputChannels: outputChannels,
                                                           kernel: kernelSize, stride: stride, outputSize: g.gridCount)
        }
    }

    /// oneDNN pads with zeros only: with reflection the batch is copied, padded, into a workspace buffer.
    private func oneDNNSource(_ x: UnsafePointer<Float>, batch: Int, _ g: ConvGeometry, _ workspace: Workspace) -> UnsafePointer<Float> {
        guard paddingMode == .reflect && padding > 0 else { return x }
        let plane = inputChannels * (g.height + 2 * padding) * (g.width + 2 * padding), inCount = inputChannels * g.height * g.width
        let padded = workspace.buffer(Workspace.Slot.oneDNNPadded, count: batch * plane)
        for n in 0..<batch { g.pad(x + n * inCount, into: padded + n * plane) }
        return UnsafePointer(padded)
    }

    /// dL/dx: the full correlation of dY with the 180°-rotated, transposed kernel gives dL/d(padded x), whose
    /// border `unpad` folds back (reflection) or drops (zeros).
    private func winogradBackwardData(_ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                      _ g: ConvGeometry, batch: Int, tile: WinogradTile, workspace: Workspace) {
        // F(2×2) reads the forward kernels transposed at mirrored positions (`Winograd3x3.convolve`); F(4×4)'s G
        // has no such symmetry and keeps kernels of its own for the adjoint.
        let transposed = tile == .two && backwardOnForwardKernels
        let kernels = winogradKernels(w, adjoint: !transposed, tile: tile, workspace: workspace)
        let ph = g.height + 2 * padding, pw = g.width + 2 * padding
        let dpadded = workspace.buffer(Workspace.Slot.winogradOutput, count: inputChannels * ph * pw)
        let inCount = inputChannels * g.height * g.width, outCount = outputChannels * g.gridCount
        for n in 0..<batch {
            Winograd3x3.convolve(dy + n * outCount, channels: outputChannels, height: g.outputHeight,
                                 width: g.outputWidth, padding: 2, paddingMode: .zeros, kernels: kernels,
                                 outputChannels: inputChannels, bias: nil, tile: tile, output: dpadded, workspace: workspace,
                                 transposedKernels: transposed)
            g.unpad(dpadded, into: dx + n * inCount)
        }
    }

    /// The Winograd-transformed kernels of `w` (the weights or their bf16 rounding), transformed again only when
    /// they changed since the last call.
    private func winogradKernels(_ w: UnsafePointer<Float>, adjoint: Bool, tile: WinogradTile,
                                 workspace: Workspace) -> UnsafePointer<Float> {
        let o = outputChannels, i = inputChannels
        return workspace.transformedKernels(layer: self, kind: .winograd(tile, adjoint: adjoint),
                                            fingerprint: Kernels.fingerprint(w, weight.value.count),
                                            count: tile.positions * o * i) {
            Winograd3x3.transformKernels(w, outputChannels: o, inputChannels: i, adjoint: adjoint, tile: tile, into: $0)
        }
    }

    // MARK: Direct kernel for one output channel, stride 1

    private func directForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                               _ g: ConvGeometry, _ workspace: Workspace) {
        let ph = g.height + 2 * g.padding, pw = g.width + 2 * g.padding, k = kernelSize
        let wo = g.outputWidth, cin = g.channels
        // The input is padded a group of channels at a time (at most `Self.directPaddedBudget` floats; at 256²,
        // 64 channels, the whole padded input would be 17.6 MB); each output row still sums its channels in order
        // 0..<cin, so the grouping does not change the result.
        let group = max(1, min(cin, Self.directPaddedBudget / (ph * pw)))
        let padded = workspace.buffer(Workspace.Slot.padded, count: group * ph * pw)
        var part = g
        for first in Swift.stride(from: 0, to: cin, by: group) {
            let channels = min(group, cin - first)
            part.channels = channels
            part.pad(x + first * g.height * g.width, into: padded)
            parallelFor(g.outputHeight) { rows in
                for oy in rows {
                    let yrow = y + oy * wo
                    if first == 0 { yrow.update(repeating: 0, count: wo) }
                    for c in 0..<channels {
                        for ky in 0..<k {
                            let src = padded + (c * ph + oy + ky) * pw
                            let wr = w + ((first + c) * k + ky) * k
                            for kx in 0..<k { Kernels.axpy(wr[kx], src + kx, yrow, wo) }
                        }
                    }
                }
            }
        }
    }

    /// Floats of padded input the direct one-output-channel kernel holds at once (1 MiB).
    nonisolated(unsafe) static var directPaddedBudget = 1 << 18

    private func directBackward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ dx: UnsafeMutablePointer<Float>?,
                                _ g: ConvGeometry, _ parameterGradients: Bool, _ workspace: Workspace) {
        let ph = g.height + 2 * g.padding, pw = g.width + 2 * g.padding, k = kernelSize
        let wo = g.outputWidth, ho = g.outputHeight
        if parameterGradients {
            let padded = workspace.buffer(Workspace.Slot.padded, count: g.channels * ph * pw)
            g.pad(x, into: padded)
            let dw = weight.gradient.pointer
            parallelFor(g.channels) { channels in
                for c in channels {
                    for ky in 0..<k {
                        for kx in 0..<k {
                            var s = 0.0
                            for oy in 0..<ho {
                                s += Kernels.dot(dy + oy * wo, padded + (c * ph + oy + ky) * pw + kx, wo)
                            }
                            dw[(c * k + ky) * k + kx] += Float(s)
                        }
                    }
                }
            }
        }
        if let dx {
            let dpadded = workspace.buffer(Workspace.Slot.columns2, count: g.channels * ph * pw)
            parallelFor(g.channels) { channels in
                for c in channels {
                    let plane = dpadded + c * ph * pw
                    plane.update(repeating: 0, count: ph * pw)
                    for oy in 0..<ho {
                        for ky in 0..<k {
                            let dst = plane + (oy + ky) * pw
                            let wr = w + (c * k + ky) * k
                            for kx in 0..<k { Kernels.axpy(wr[kx], dy + oy * wo, dst + kx, wo) }
                        }
                    }
                }
            }
            g.unpad(dpadded, into: dx)
        }
    }
}

/// How a convolution layer computes its passes.
public enum ConvolutionAlgorithm: String, Codable, CaseIterable, Sendable {
    /// Per pass and shape, oneDNN where `ConvolutionBackendPolicy` measured it faster; else MR2CT's own kernels as
    /// `.native` picks them, except that F(2×2)'s backward passes run on its forward kernels: backward-data reads
    /// them transposed (no second set of transformed kernels) and the weight gradient is Winograd too
    /// (`Winograd3x3.weightGradient`).
    case automatic
    /// MR2CT's own kernels only, with the arithmetic of the engine before oneDNN (the run folders made before issue
    /// 20 resume bit for bit): Winograd where it applies and pays, backward-data on adjoint kernels of its own, the
    /// weight gradients and everything else on im2col + GEMM.
    case native
    /// im2col + GEMM (or the direct kernel for one output channel).
    case im2col
    /// Winograd F(2×2, 3×3) for every 3×3 stride-1 convolution and all three passes, as under `.automatic` (others
    /// use im2col).
    case winograd
    /// Winograd F(4×4, 3×3) for every 3×3 stride-1 convolution (others use im2col).
    case winograd4
    /// oneDNN's convolutions for every pass (float32; its bf16 kernels with `Precision.bf16` where native).
    case onednn
}

/// Transposed 2-D convolution (PyTorch `nn.ConvTranspose2d`: weight `Cin × Cout × k × k`, stride, padding,
/// output_padding, bias), computed as the adjoint of a convolution: cols = Wᵀ·X, then col2im into the output.
/// Backward-data is im2col(dY) followed by W·cols; backward-weights X·colsᵀ.
public final class ConvTranspose2d: Layer, ParameterContainer, SharedActivationReader {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let outputPadding: Int
    public let weight: Parameter
    public let bias: Parameter?
    /// `.onednn` runs every pass on oneDNN; `.automatic` where `ConvolutionBackendPolicy` measured it faster.
    public var algorithm: ConvolutionAlgorithm = .automatic
    /// The arithmetic of this layer's convolutions (`Precision`; default float32).
    public var precision: Precision = .f32

    public init(name: String, inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Int = 0, outputPadding: Int = 0, bias: Bool = true) {
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        weight = Parameter(name: name + ".weight", shape: [inputChannels, outputChannels, kernelSize, kernelSize])
        self.bias = bias ? Parameter(name: name + ".bias", shape: [outputChannels]) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    public func outputShape(for s: [Int]) -> [Int] {
        [s[0], outputChannels, (s[2] - 1) * stride - 2 * padding + kernelSize + outputPadding,
         (s[3] - 1) * stride - 2 * padding + kernelSize + outputPadding]
    }

    /// The convolution whose adjoint this is: image = this layer's output, grid = this layer's input.
    func geometry(_ s: [Int]) -> ConvGeometry {
        let o = outputShape(for: s)
        return ConvGeometry(channels: outputChannels, height: o[2], width: o[3], kernelHeight: kernelSize,
                            kernelWidth: kernelSize, stride: stride, padding: padding, paddingMode: .zeros,
                            outputHeight: s[2], outputWidth: s[3])
    }

    public func forward(_ input: Tensor, record: LayerRecord, mode: ForwardMode, workspace: Workspace,
                        consumeInput: Bool) -> Tensor {
        precondition(input.shape.count == 4 && input.shape[1] == inputChannels,
                     "ConvTranspose2d(\(weight.name)): input \(input.shape), expected N×\(inputChannels)×H×W")
        record.input = input
        let g = geometry(input.shape)
        let output = record.outputTensor(shape: outputShape(for: input.shape))
        let batch = input.shape[0], inCount = inputChannels * g.gridCount, outCount = outputChannels * g.height * g.width
        let dnnl = oneDNNPrimitive(.forward, batch: batch, g, workspace)
        let emulate = precision == .bf16 && dnnl?.shape.precision != .bf16
        let x = emulate ? roundedCopy(input.pointer, count: input.count, Workspace.Slot.bfloat16Input, workspace)
                        : UnsafePointer(input.pointer)
        let w = emulate ? roundedWeights(weight, of: self, workspace) : UnsafePointer(weight.value.pointer)
        if let dnnl {
            dnnl.forward(x, weights: w, weightsVersion: Kernels.fingerprint(w, weight.value.count),
                         bias: bias.map { UnsafePointer($0.value.pointer) }, output.pointer)
            return output
        }
        for n in 0..<batch {
            let xn = x + n * inCount, y = output.pointer + n * outCount
            y.update(repeating: 0, count: outCount)
            let tile = g.rowsPerTile
            var oy0 = 0
            while oy0 < g.outputHeight {
                let oy1 = min(g.outputHeight, oy0 + tile), nt = (oy1 - oy0) * g.outputWidth
                let cols = workspace.buffer(Workspace.Slot.columns, count: g.rows * nt)
                BLAS.sgemmSplitColumns(transA: true, m: g.rows, n: nt, k: inputChannels,
                                       a: w, lda: g.rows, b: xn + oy0 * g.outputWidth, ldb: g.gridCount,
                                       beta: 0, c: cols, ldc: nt)
                g.col2im(cols, y, oy0: oy0, oy1: oy1)
                oy0 = oy1
            }
        }
        if let bias { addBias(bias.value.pointer, to: output.pointer, planes: batch, channels: outputChannels, planeSize: g.height * g.width) }
        return output
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?,
                         record: LayerRecord, parameterGradients: Bool, workspace: Workspace, depth: Int) {
        let input = record.input!
        let g = geometry(input.shape)
        let batch = input.shape[0], inCount = inputChannels * g.gridCount, outCount = outputChannels * g.height * g.width
        if parameterGradients, let bias {
            accumulateBiasGradient(gradOutput, into: bias.gradient.pointer, planes: batch, channels: outputChannels,
                                   planeSize: g.height * g.width)
        }
        if !parameterGradients && gradInput == nil { return }
        let dataDNNL = gradInput == nil ? nil : oneDNNPrimitive(.backwardData, batch: batch, g, workspace)
        let weightsDNNL = parameterGradients ? oneDNNPrimitive(.backwardWeights, batch: batch, g, workspace) : nil
        let (dy, x, w) = backwardOperands(precision: precision, gradOutput: gradOutput, count: batch * outCount, input: input,
                                          weight: weight, layer: self, data: gradInput == nil ? nil : dataDNNL.map { $0.shape.precision } ?? .f32,
                                          weights: parameterGradients ? weightsDNNL.map { $0.shape.precision } ?? .f32 : nil,
                                          workspace)
        if let gradInput, let dataDNNL {
            dataDNNL.backwardData(dy, weights: w, weightsVersion: Kernels.fingerprint(w, weight.value.count), gradInput)
        }
        if let weightsDNNL { weightsDNNL.backwardWeights(x, dy, accumulatingInto: weight.gradient.pointer) }
        let nativeGradInput = dataDNNL == nil ? gradInput : nil
        let nativeWeights = parameterGradients && weightsDNNL == nil
        if nativeGradInput == nil && !nativeWeights { return }
        for n in 0..<batch {
            let xn = x + n * inCount, dyn = dy + n * outCount
            let tile = g.rowsPerTile
            var oy0 = 0
            while oy0 < g.outputHeight {
                let oy1 = min(g.outputHeight, oy0 + tile), nt = (oy1 - oy0) * g.outputWidth
                let cols = workspace.buffer(Workspace.Slot.columns, count: g.rows * nt)
                g.im2col(dyn, cols, oy0: oy0, oy1: oy1)
                if nativeWeights {
                    BLAS.sgemm(transA: false, transB: true, m: inputChannels, n: g.rows, k: nt,
                               a: xn + oy0 * g.outputWidth, lda: g.gridCount, b: cols, ldb: nt,
                               beta: 1, c: weight.gradient.pointer, ldc: g.rows)
                }
                if let nativeGradInput {
                    BLAS.sgemm(transA: false, transB: false, m: inputChannels, n: nt, k: g.rows,
                               a: w, lda: g.rows, b: cols, ldb: nt,
                               beta: 0, c: nativeGradInput + n * inCount + oy0 * g.outputWidth, ldc: g.gridCount)
                }
                oy0 = oy1
            }
        }
    }

    /// The oneDNN primitive that runs `pass` (a oneDNN deconvolution), or nil for MR2CT's own kernels.
    func oneDNNPrimitive(_ pass: ConvolutionPass, batch: Int, _ g: ConvGeometry, _ workspace: Workspace) -> OneDNNConvolution? {
        func shape(_ p: Precision) -> OneDNNShape {
            OneDNNShape(transposed: true, batch: batch, inputChannels: inputChannels, inputHeight: g.outputHeight,
                        inputWidth: g.outputWidth, outputChannels: outputChannels, outputHeight: g.height, outputWidth: g.width,
                        kernel: kernelSize, stride: stride, padBegin: padding, padEnd: padding - outputPadding,
                        hasBias: bias != nil, precision: p, threads: OneDNNConvolution.threads(for: pass))
        }
        if precision == .bf16 && Precision.bf16.isNative,
           let native = workspace.oneDNN(layer: self, pass: pass, shape: shape(.bf16)) { return native }
        return usesOneDNN(pass, g) ? workspace.oneDNN(layer: self, pass: pass, shape: shape(.f32)) : nil
    }

    /// Whether `pass` runs on oneDNN in float32 for this layer at this geometry.
    func usesOneDNN(_ pass: ConvolutionPass, _ g: ConvGeometry) -> Bool {
        switch algorithm {
        case .onednn: true
        case .im2col, .winograd, .winograd4, .native: false
        case .automatic:
            ConvolutionBackendPolicy.transposedUsesOneDNN(
                pass, inputChannels: inputChannels, outputChannels: outputChannels, kernel: kernelSize, stride: stride,
                inputSize: g.gridCount)
        }
    }
}

/// The operands of a convolution's backward passes (dL/dy, x, W): with `precision` bf16, rounded to bf16 where a
/// pass runs on float32 kernels (emulated bf16) — dL/dy for either pass, x for the weights' pass, W for the data's.
/// `data` / `weights`: the arithmetic of the kernels that run that pass, nil when it does not run.
func backwardOperands(precision: Precision, gradOutput: UnsafePointer<Float>, count: Int, input: Tensor, weight: Parameter,
                      layer: AnyObject, data: Precision?, weights: Precision?, _ workspace: Workspace)
    -> (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>) {
    let emulateData = precision == .bf16 && data == .f32, emulateWeights = precision == .bf16 && weights == .f32
    let dy = emulateData || emulateWeights
        ? roundedCopy(gradOutput, count: count, Workspace.Slot.bfloat16Gradient, workspace) : gradOutput
    let x = emulateWeights ? roundedCopy(input.pointer, count: input.count, Workspace.Slot.bfloat16Input, workspace)
                           : UnsafePointer(input.pointer)
    let w = emulateData ? roundedWeights(weight, of: layer, workspace) : UnsafePointer(weight.value.pointer)
    return (dy, x, w)
}

/// A copy of `x` rounded to bf16 in workspace slot `slot` (emulated `Precision.bf16`).
func roundedCopy(_ x: UnsafePointer<Float>, count: Int, _ slot: Int, _ workspace: Workspace) -> UnsafePointer<Float> {
    let copy = workspace.buffer(slot, count: count)
    BFloat16.round(x, into: copy, count: count)
    return UnsafePointer(copy)
}

/// `weight` rounded to bf16, cached in the workspace and made again only when the weights changed.
func roundedWeights(_ weight: Parameter, of layer: AnyObject, _ workspace: Workspace) -> UnsafePointer<Float> {
    let w = UnsafePointer(weight.value.pointer), n = weight.value.count
    return workspace.transformedKernels(layer: layer, kind: .bfloat16Weights, fingerprint: Kernels.fingerprint(w, n),
                                        count: n) { BFloat16.round(w, into: $0, count: n) }
}

/// y[n, c, :] += b[c].
func addBias(_ b: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, planes: Int, channels: Int, planeSize: Int) {
    parallelFor(planes * channels) { range in
        for p in range {
            let v = b[p % channels], row = y + p * planeSize
            for i in 0..<planeSize { row[i] += v }
        }
    }
}

/// y[c, :] = b[c] for one image.
func fillBias(_ b: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, channels: Int, planeSize: Int) {
    parallelFor(channels) { range in
        for c in range { (y + c * planeSize).update(repeating: b[c], count: planeSize) }
    }
}

/// db[c] += Σ_{n, i} dy[n, c, i].
func accumulateBiasGradient(_ dy: UnsafePointer<Float>, into db: UnsafeMutablePointer<Float>, planes: Int, channels: Int,
                            planeSize: Int) {
    for n in 0..<planes {
        for c in 0..<channels { db[c] += Float(Kernels.sum(dy + (n * channels + c) * planeSize, planeSize)) }
    }
}
