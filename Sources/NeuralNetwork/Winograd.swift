import Foundation

/// The output tile m of a Winograd algorithm F(m×m, 3×3): each m×m output tile is computed from an (m+2)×(m+2)
/// input tile with (m+2)² multiplications per input–output channel pair instead of 9m².
enum WinogradTile: Int, Sendable {
    /// F(2×2, 3×3): 16 multiplications for 4 outputs (2.25× fewer than direct); transforms that only add,
    /// subtract and halve, so it agrees with the direct convolution to float32 rounding.
    case two = 2
    /// F(4×4, 3×3): 36 multiplications for 16 outputs (4× fewer than direct, 1.78× fewer than F(2×2)); its
    /// transforms scale by up to 8 and 1/24, so its float32 error is a few times F(2×2)'s (Lavin & Gray §5: still
    /// within the PyTorch goldens' 1e-5).
    case four = 4

    /// The side m + 2 of the input tile (and of the transformed tile).
    var inputSide: Int { rawValue + 2 }
    /// The positions ξ of the transformed tile: the number of GEMMs.
    var positions: Int { inputSide * inputSide }
}

/// 3×3, stride-1 convolution by Winograd's minimal filtering algorithms F(2×2, 3×3) and F(4×4, 3×3)
/// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016, §4 and §5).
///
/// Each m×m output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for the (m+2)×(m+2) input tile d and the 3×3 kernel g. Summed
/// over input channels, the element-wise products become (m+2)² independent GEMMs, M_ξ (Cout × tiles) =
/// U_ξ (Cout × Cin) · V_ξ (Cin × tiles), one per position ξ of the transformed tile: (m+2)²·Cout·Cin multiply-adds
/// per tile instead of 9m²·Cout·Cin. Used for the ResNet generator's residual convolutions (reflection-padded 3×3)
/// forward, with the flipped and transposed kernel for their gradient with respect to the input, and (F(2×2)) for
/// their weight gradient (`weightGradient`).
enum Winograd3x3 {
    /// Transformed kernels U_ξ = G g Gᵀ, stored `positions × outputChannels × inputChannels`. With `adjoint`, the
    /// kernel of the input-gradient convolution instead: g'[c][o] = g[o][c] rotated by 180°, stored
    /// `positions × inputChannels × outputChannels`. `weight` is PyTorch's `outputChannels × inputChannels × 3 × 3`.
    static func transformKernels(_ weight: UnsafePointer<Float>, outputChannels: Int, inputChannels: Int,
                                 adjoint: Bool, tile: WinogradTile, into u: UnsafeMutablePointer<Float>,
                                 kernelByKernel: Bool = false) {
        let pairs = outputChannels * inputChannels
        switch tile {
        case .two:
            forEachKernel(weight, outputChannels: outputChannels, inputChannels: inputChannels, adjoint: adjoint) { g, index in
                // Gg (4 × 3), G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], on the kernel's rows; then (Gg)Gᵀ along each row.
                let k0 = SIMD4<Float>(g.0, g.1, g.2, 0), k1 = SIMD4<Float>(g.3, g.4, g.5, 0)
                let k2 = SIMD4<Float>(g.6, g.7, g.8, 0)
                let s0 = k0, s1 = 0.5 * (k0 + k1 + k2), s2 = 0.5 * (k0 - k1 + k2), s3 = k2
                @inline(__always) func store(_ i: Int, _ s: SIMD4<Float>) {
                    let p = u + i * 4 * pairs + index
                    p[0] = s[0]
                    p[pairs] = 0.5 * (s[0] + s[1] + s[2])
                    p[2 * pairs] = 0.5 * (s[0] - s[1] + s[2])
                    p[3 * pairs] = s[2]
                }
                store(0, s0)
                store(1, s1)
                store(2, s2)
                store(3, s3)
            }
        case .four:
            /// G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1] (Lavin & Gray §5) applied to three
            /// values a, b, c (the kernel's rows as vectors, or one row's values).
            @inline(__always) func g6<V: SIMD>(_ a: V, _ b: V, _ c: V) -> (V, V, V, V, V, V) where V.Scalar == Float {
                let sixth: Float = 1.0 / 6, twelfth: Float = 1.0 / 12, twentyFourth: Float = 1.0 / 24
                let outer = a + c
                return (0.25 * a, -sixth * (outer + b), -sixth * (outer - b),
                        twentyFourth * a + twelfth * b + sixth * c, twentyFourth * a - twelfth * b + sixth * c, c)
            }
            if !kernelByKernel, (adjoint ? outputChannels : inputChannels) % 16 == 0 {
                transformKernelsF4(weight, outputChannels: outputChannels, inputChannels: inputChannels,
                                   adjoint: adjoint, into: u)
                return
            }
            forEachKernel(weight, outputChannels: outputChannels, inputChannels: inputChannels, adjoint: adjoint) { g, index in
                // G g: the kernel's three rows combined into six rows of three (lanes 0–2); then (G g) Gᵀ: the
                // same combination of each row's three values, all six rows at once (lanes 0–5 of SIMD8).
                let r = g6(SIMD4(g.0, g.1, g.2, 0), SIMD4(g.3, g.4, g.5, 0), SIMD4(g.6, g.7, g.8, 0))
                func lane(_ k: Int) -> SIMD8<Float> { SIMD8(r.0[k], r.1[k], r.2[k], r.3[k], r.4[k], r.5[k], 0, 0) }
                let t = g6(lane(0), lane(1), lane(2))
                // t.j[i] = U at position (row i, column j).
                for i in 0..<6 {
                    let p = u + 6 * i * pairs + index
                    p[0] = t.0[i]
                    p[pairs] = t.1[i]
                    p[2 * pairs] = t.2[i]
                    p[3 * pairs] = t.3[i]
                    p[4 * pairs] = t.4[i]
                    p[5 * pairs] = t.5[i]
                }
            }
        }
    }

    /// `transformKernels` for `.four`, sixteen kernels at a time: those of one plane index's sixteen consecutive
    /// places (input channels c…c+15 of one output channel; with `adjoint`, output channels of one input channel),
    /// their taps first gathered into a 9 × 16 block, then the same arithmetic as the kernel-by-kernel path in the
    /// same order (the same bits) on SIMD16 lanes, each of the 36 results stored as one contiguous vector. The
    /// kernel-by-kernel path's lane shuffles compiled to per-lane code: at 256², ngf 64, transforming the 18
    /// residual convolutions took 18 % of a conversion's time once kernels were transformed per call.
    /// Needs the lane axis (inputChannels, or outputChannels with `adjoint`) to be a multiple of 16.
    private static func transformKernelsF4(_ weight: UnsafePointer<Float>, outputChannels: Int, inputChannels: Int,
                                           adjoint: Bool, into u: UnsafeMutablePointer<Float>) {
        typealias V = SIMD16<Float>
        let pairs = outputChannels * inputChannels
        let outer = adjoint ? inputChannels : outputChannels, lanes = adjoint ? outputChannels : inputChannels
        @inline(__always) func g6(_ a: V, _ b: V, _ c: V) -> (V, V, V, V, V, V) {
            let sixth: Float = 1.0 / 6, twelfth: Float = 1.0 / 12, twentyFourth: Float = 1.0 / 24
            let outer = a + c
            return (0.25 * a, -sixth * (outer + b), -sixth * (outer - b),
                    twentyFourth * a + twelfth * b + sixth * c, twentyFourth * a - twelfth * b + sixth * c, c)
        }
        parallelFor(outer, minimumPerThread: 8) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 * 16) { taps in
                let taps = taps.baseAddress!
                for q in range {
                    for first in Swift.stride(from: 0, to: lanes, by: 16) {
                        // taps[t·16 + l] = tap t of lane l's kernel (rotated by 180° with `adjoint`).
                        for l in 0..<16 {
                            let (o, c) = adjoint ? (first + l, q) : (q, first + l)
                            let w = weight + (o * inputChannels + c) * 9
                            for t in 0..<9 { taps[t * 16 + l] = w[adjoint ? 8 - t : t] }
                        }
                        @inline(__always) func tap(_ t: Int) -> V {
                            UnsafeRawPointer(taps + t * 16).loadUnaligned(as: V.self)
                        }
                        // G g per column k of the kernel: r[k].j = row j of G g at column k.
                        let r0 = g6(tap(0), tap(3), tap(6)), r1 = g6(tap(1), tap(4), tap(7)), r2 = g6(tap(2), tap(5), tap(8))
                        let index = q * lanes + first
                        // (G g) Gᵀ along row i: U at (row i, column m) is t.m.
                        @inline(__always) func row(_ i: Int, _ a: V, _ b: V, _ c: V) {
                            let t = g6(a, b, c)
                            let p = u + 6 * i * pairs + index
                            @inline(__always) func store(_ m: Int, _ v: V) {
                                UnsafeMutableRawPointer(p + m * pairs).storeBytes(of: v, as: V.self)
                            }
                            store(0, t.0); store(1, t.1); store(2, t.2); store(3, t.3); store(4, t.4); store(5, t.5)
                        }
                        row(0, r0.0, r1.0, r2.0); row(1, r0.1, r1.1, r2.1); row(2, r0.2, r1.2, r2.2)
                        row(3, r0.3, r1.3, r2.3); row(4, r0.4, r1.4, r2.4); row(5, r0.5, r1.5, r2.5)
                    }
                }
            }
        }
    }

    /// Calls `body(g, index)` for every 3×3 kernel of `weight` (in parallel over the output channels): g its nine
    /// taps, rotated by 180° with `adjoint`; index its place in one position's plane of transformed kernels,
    /// o·Cin + c (or c·Cout + o with `adjoint`: the input-gradient convolution's kernel g'[c][o]).
    @inline(__always)
    private static func forEachKernel(_ weight: UnsafePointer<Float>, outputChannels: Int, inputChannels: Int, adjoint: Bool,
                                      _ body: ((Float, Float, Float, Float, Float, Float, Float, Float, Float), Int) -> Void) {
        parallelFor(outputChannels, minimumPerThread: 8) { range in
            for o in range {
                for c in 0..<inputChannels {
                    let w = weight + (o * inputChannels + c) * 9
                    var g = (w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8])
                    if adjoint { g = (g.8, g.7, g.6, g.5, g.4, g.3, g.2, g.1, g.0) }
                    body(g, adjoint ? c * outputChannels + o : o * inputChannels + c)
                }
            }
        }
    }

    /// y (`outputChannels × outputHeight × outputWidth`, outputHeight = height + 2·padding − 2) = the 3×3
    /// cross-correlation of `image` (`channels × height × width`, padded by `padding` with zeros or its
    /// reflection) with the kernels `u` from `transformKernels` (the same `tile`), plus `bias` when given.
    ///
    /// `transposedKernels` (F(2×2) only): `u` holds the forward kernels of the convolution whose input gradient this
    /// is (`outputChannels × channels` of it swapped: stored `positions × channels × outputChannels`, not adjoint), and
    /// the GEMMs read them transposed at mirrored positions. For F(2×2)'s G, reversing a kernel's taps permutes G's
    /// rows (G·J = P·G, P swapping rows 0 and 3), so the 180°-rotated kernel's U at ξ = (i, j) is the kernel's U at
    /// (p(i), p(j)), p = (3, 1, 2, 0): backward-data needs no second set of transformed kernels.
    static func convolve(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, padding: Int,
                         paddingMode: PaddingMode, kernels u: UnsafePointer<Float>, outputChannels: Int,
                         bias: UnsafePointer<Float>?, tile: WinogradTile, output y: UnsafeMutablePointer<Float>,
                         workspace: Workspace, transposedKernels: Bool = false) {
        precondition(!transposedKernels || tile == .two, "Winograd3x3.convolve: transposed kernels need F(2×2)")
        let m = tile.rawValue, positions = tile.positions
        let outputHeight = height + 2 * padding - 2, outputWidth = width + 2 * padding - 2
        let (v, layout) = transformInput(image, channels: channels, height: height, width: width, padding: padding,
                                         paddingMode: paddingMode, tile: tile, workspace: workspace)
        let tilesY = layout.tilesY, tilesX = layout.tilesX, tiles = tilesY * tilesX
        let productStride = positionStride(outputChannels, tiles: tiles), inputStride = positionStride(channels, tiles: tiles)
        let product = workspace.buffer(Workspace.Slot.columns2, count: positions * productStride)

        // M_ξ = U_ξ · V_ξ; with transposed kernels U_ξ is the forward U at the mirrored position, read transposed.
        let pairs = outputChannels * channels
        forEachPosition(positions) { xi in
            let kernel = transposedKernels ? Self.mirrored[xi / 4] * 4 + Self.mirrored[xi % 4] : xi
            BLAS.sgemm(transA: transposedKernels, transB: false, m: outputChannels, n: tiles, k: channels,
                       a: u + kernel * pairs, lda: transposedKernels ? outputChannels : channels,
                       b: v + xi * inputStride, ldb: tiles,
                       beta: 0, c: product + xi * productStride, ldc: tiles)
        }

        parallelFor(outputChannels) { range in
            // Per output channel: the rows Aᵀ M (m × (m+2) rows of tilesX) and m output rows of whole tiles.
            let transform = m * tile.inputSide * phaseStride(tilesX)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: transform + m * m * tilesX) { scratch in
                let rows = scratch.baseAddress! + transform
                for o in range {
                    let source = product + o * tiles, stride = productStride
                    let yo = y + o * outputHeight * outputWidth
                    let b = bias?[o] ?? 0
                    for ty in 0..<tilesY {
                        switch tile {
                        case .two: outputTransform2(source + ty * tilesX, tilesX: tilesX, stride: stride, bias: b,
                                                    scratch: scratch.baseAddress!, rows: rows)
                        case .four: outputTransform4(source + ty * tilesX, tilesX: tilesX, stride: stride, bias: b,
                                                     scratch: scratch.baseAddress!, rows: rows)
                        }
                        for r in 0..<m where m * ty + r < outputHeight {
                            (yo + (m * ty + r) * outputWidth).update(from: rows + r * m * tilesX, count: outputWidth)
                        }
                    }
                }
            }
        }
    }

    /// V = Bᵀ d B of every input tile of `image` (padded by `padding` with zeros or its reflection, extended with
    /// zeros to whole tiles), position ξ of channel c's tile t at `v + ξ·positionStride(channels, tiles) + c·tiles
    /// + t`, in the workspace's column buffer; and where the tiles lie.
    static func transformInput(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, padding: Int,
                               paddingMode: PaddingMode, tile: WinogradTile,
                               workspace: Workspace) -> (v: UnsafeMutablePointer<Float>, layout: TileLayout) {
        let m = tile.rawValue, positions = tile.positions
        let outputHeight = height + 2 * padding - 2, outputWidth = width + 2 * padding - 2
        let tilesY = (outputHeight + m - 1) / m, tilesX = (outputWidth + m - 1) / m, tiles = tilesY * tilesX
        let ph = m * tilesY + 2, pw = m * tilesX + 2
        let padded = workspace.buffer(Workspace.Slot.padded, count: channels * ph * pw)
        let stride = positionStride(channels, tiles: tiles)
        let v = workspace.buffer(Workspace.Slot.columns, count: positions * stride)
        let source = ConvGeometry(channels: channels, height: height, width: width, kernelHeight: 3, kernelWidth: 3,
                                  stride: 1, padding: padding, paddingMode: paddingMode,
                                  outputHeight: outputHeight, outputWidth: outputWidth)
        let layout = TileLayout(tilesY: tilesY, tilesX: tilesX, paddedHeight: ph, paddedWidth: pw)
        parallelFor(channels) { range in
            withUnsafeTemporaryAllocation(of: Float.self,
                                          capacity: inputScratchCount(tile, paddedWidth: pw, tilesX: tilesX)) { rows in
                for c in range {
                    let plane = padded + c * ph * pw
                    source.padPlane(image + c * height * width, into: plane, paddedHeight: ph, paddedWidth: pw)
                    let out = v + c * tiles
                    switch tile {
                    case .two: inputTransform2(plane, layout, rows: rows.baseAddress!, into: out, stride: stride)
                    case .four: inputTransform4(plane, layout, rows: rows.baseAddress!, into: out, stride: stride)
                    }
                }
            }
        }
        return (v, layout)
    }

    /// Adds to `gradWeight` (PyTorch's `outputChannels × channels × 3 × 3`) the gradient of the cross-correlation
    /// `convolve` computes with F(2×2, 3×3), given dL/dY `gradOutput` (`outputChannels × outputHeight × outputWidth`)
    /// and its `image`. With Y = Aᵀ[U ⊙ V]A per tile and U = G g Gᵀ: dL/dU_ξ = Σ_tiles (A dY Aᵀ)_ξ ⊙ V_ξ, one GEMM
    /// per position ξ (Cout × tiles · tiles × Cin), and dL/dg = Gᵀ (dL/dU) G: 16 multiply-adds per tile and channel
    /// pair where im2col's GEMM takes 36 (Lavin & Gray 2016, §4, applied to the weight gradient).
    static func weightGradient(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, padding: Int,
                               paddingMode: PaddingMode, gradOutput dy: UnsafePointer<Float>, outputChannels: Int,
                               gradWeight: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let positions = WinogradTile.two.positions
        let outputHeight = height + 2 * padding - 2, outputWidth = width + 2 * padding - 2
        let (v, layout) = transformInput(image, channels: channels, height: height, width: width, padding: padding,
                                         paddingMode: paddingMode, tile: .two, workspace: workspace)
        let tilesX = layout.tilesX, tiles = layout.tilesY * tilesX
        // W_ξ = (A dY Aᵀ)_ξ per output-gradient tile, zeros beyond the output.
        let gradientStride = positionStride(outputChannels, tiles: tiles), inputStride = positionStride(channels, tiles: tiles)
        let wt = workspace.buffer(Workspace.Slot.columns2, count: positions * gradientStride)
        parallelFor(outputChannels) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 6 * 2 * tilesX + 2 * phaseStride(tilesX)) { scratch in
                for o in range {
                    gradientTransform2(dy + o * outputHeight * outputWidth, height: outputHeight, width: outputWidth,
                                       layout, scratch: scratch.baseAddress!, into: wt + o * tiles,
                                       stride: gradientStride)
                }
            }
        }
        // dL/dU_ξ (Cout × Cin) = W_ξ · V_ξᵀ.
        let kernelStride = positionStride(outputChannels, tiles: channels)
        let du = workspace.buffer(Workspace.Slot.winogradKernelGradient, count: positions * kernelStride)
        forEachPosition(positions) { xi in
            BLAS.sgemm(transA: false, transB: true, m: outputChannels, n: channels, k: tiles,
                       a: wt + xi * gradientStride, lda: tiles, b: v + xi * inputStride, ldb: tiles,
                       beta: 0, c: du + xi * kernelStride, ldc: channels)
        }
        // dL/dg = Gᵀ (dL/dU) G, Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1], for every (o, c).
        parallelFor(outputChannels) { range in
            for o in range {
                for c in 0..<channels {
                    let u = du + o * channels + c
                    @inline(__always) func row(_ i: Int) -> SIMD4<Float> {
                        SIMD4(u[(4 * i) * kernelStride], u[(4 * i + 1) * kernelStride],
                              u[(4 * i + 2) * kernelStride], u[(4 * i + 3) * kernelStride])
                    }
                    let u0 = row(0), u1 = row(1), u2 = row(2), u3 = row(3)
                    let half = 0.5 * (u1 + u2)
                    let r0 = u0 + half, r1 = 0.5 * (u1 - u2), r2 = half + u3
                    let g = gradWeight + (o * channels + c) * 9
                    @inline(__always) func add(_ r: SIMD4<Float>, toRow k: Int) {
                        let h = 0.5 * (r[1] + r[2])
                        g[3 * k] += r[0] + h
                        g[3 * k + 1] += 0.5 * (r[1] - r[2])
                        g[3 * k + 2] += h + r[3]
                    }
                    add(r0, toRow: 0)
                    add(r1, toRow: 1)
                    add(r2, toRow: 2)
                }
            }
        }
    }

    /// W_ξ[t] = (A dY Aᵀ)_ξ for every 2 × 2 tile of one output-gradient plane (`height × width`, zeros beyond it),
    /// A = [1 0; 1 1; 1 −1; 0 −1] (the transpose of `outputTransform2`'s Aᵀ), position ξ of tile t at
    /// `out + ξ·stride + t`. `scratch`: 6 rows of 2·tilesX and 2 of `phaseStride(tilesX)`.
    static func gradientTransform2(_ plane: UnsafePointer<Float>, height: Int, width: Int, _ l: TileLayout,
                                   scratch: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>,
                                   stride: Int) {
        let n = 2 * l.tilesX, ps = phaseStride(l.tilesX)
        let y0 = scratch, y1 = y0 + n, z0 = y1 + n, z1 = z0 + n, z2 = z1 + n, z3 = z2 + n
        let phase = z3 + n   // even and odd columns of one z row, ps apart
        phase.update(repeating: 0, count: 2 * ps)
        for ty in 0..<l.tilesY {
            // The tile row's two gradient rows, zero-extended to whole tiles.
            @inline(__always) func load(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
                if r < height {
                    dst.update(from: plane + r * width, count: width)
                    (dst + width).update(repeating: 0, count: n - width)
                } else {
                    dst.update(repeating: 0, count: n)
                }
            }
            load(2 * ty, into: y0)
            load(2 * ty + 1, into: y1)
            // A dY along the columns: rows y0, y0 + y1, y0 − y1, −y1.
            for x in 0..<n {
                z0[x] = y0[x]
                z1[x] = y0[x] + y1[x]
                z2[x] = y0[x] - y1[x]
                z3[x] = -y1[x]
            }
            // · Aᵀ along each row: (a, a + b, a − b, −b) for the tile's values a, b (the row's even and odd
            // columns), eight tiles at a time.
            let base = out + ty * l.tilesX
            @inline(__always) func transformRow(_ i: Int, _ z: UnsafeMutablePointer<Float>) {
                splitPairs(z, tilesX: l.tilesX, into: phase, phaseStride: ps)
                let o = base + (4 * i) * stride
                forEachVector(l.tilesX) { t, lanes in
                    let a = vector(phase + t), b = vector(phase + ps + t)
                    store(a, o + t, lanes)
                    store(a + b, o + stride + t, lanes)
                    store(a - b, o + 2 * stride + t, lanes)
                    store(-b, o + 3 * stride + t, lanes)
                }
            }
            transformRow(0, z0)
            transformRow(1, z1)
            transformRow(2, z2)
            transformRow(3, z3)
        }
    }

    /// `body(ξ)` for every position ξ < `positions`, the positions shared out whole between the compute threads
    /// (each GEMM single-threaded; ξ = thread, thread + threads, …).
    private static func forEachPosition(_ positions: Int, _ body: (Int) -> Void) {
        let threads = ComputeThreads.serial ? 1 : min(ComputeThreads.count, positions)
        ComputeThreads.fork(threads) { part in
            var xi = part
            while xi < positions {
                body(xi)
                xi += threads
            }
        }
    }

    /// The distance between consecutive positions' matrices of `rows × tiles` floats in the transformed-input,
    /// product and gradient buffers: one cache line more than the matrix. The transforms read or write all
    /// (m+2)² positions of a tile at once; unpadded, those streams lie a multiple of 4 KiB apart whenever
    /// rows·tiles is (128 channels × 64 tiles of a 128² generator's residual blocks: 32 KiB), so they fall into
    /// the same L1 sets and evict each other. Layout only: the same bits.
    static func positionStride(_ rows: Int, tiles: Int) -> Int { rows * tiles + 16 }

    /// p(i): the row of F(2×2)'s G that row i of G·J equals (J reverses a kernel's taps).
    private static let mirrored = [3, 1, 2, 0]

    /// Where the tiles of one padded plane lie.
    struct TileLayout {
        var tilesY: Int, tilesX: Int, paddedHeight: Int, paddedWidth: Int
    }

    // MARK: F(2×2, 3×3)

    /// V_ξ[t] = (Bᵀ d B)_ξ for every tile of `plane`, Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], position ξ
    /// written at `out + ξ·stride`. Per row of tiles: Bᵀ d as whole-row vector arithmetic, each of its rows split
    /// into even and odd columns, then · B on eight tiles at a time (as `inputTransform4`). `rows`:
    /// `inputScratchCount(.two, …)` floats.
    static func inputTransform2(_ plane: UnsafePointer<Float>, _ l: TileLayout, rows: UnsafeMutablePointer<Float>,
                                into out: UnsafeMutablePointer<Float>, stride: Int) {
        let pw = l.paddedWidth, tilesX = l.tilesX, ps = phaseStride(tilesX)
        let a0 = rows, a1 = a0 + pw, a2 = a1 + pw, a3 = a2 + pw
        let phase = rows + 4 * pw   // 2 phases of ps floats
        phase.update(repeating: 0, count: 2 * ps)
        for ty in 0..<l.tilesY {
            let r0 = plane + 2 * ty * pw, r1 = r0 + pw, r2 = r1 + pw, r3 = r2 + pw
            for x in 0..<pw {
                a0[x] = r0[x] - r2[x]
                a1[x] = r1[x] + r2[x]
                a2[x] = r2[x] - r1[x]
                a3[x] = r1[x] - r3[x]
            }
            let base = out + ty * tilesX
            for i in 0..<4 {   // a0 … a3
                split(rows + i * pw, phases: 2, tilesX: tilesX, into: phase, phaseStride: ps)
                let p0 = phase, p1 = p0 + ps
                let o = base + (4 * i) * stride
                forEachVector(tilesX) { t, lanes in
                    let e0 = vector(p0 + t), e1 = vector(p1 + t), e2 = vector(p0 + t + 1), e3 = vector(p1 + t + 1)
                    store(e0 - e2, o + t, lanes)
                    store(e1 + e2, o + stride + t, lanes)
                    store(e2 - e1, o + 2 * stride + t, lanes)
                    store(e1 - e3, o + 3 * stride + t, lanes)
                }
            }
        }
    }

    /// One row of tiles of y = Aᵀ M A + bias, Aᵀ = [1 1 1 0; 0 1 −1 −1]: `m` holds position ξ of tile tx at
    /// `m + ξ·stride + tx`; the 2 output rows (whole tiles, 2·tilesX wide) go to `rows`. Aᵀ M as vector arithmetic
    /// over the tiles into `scratch` (2 × 4 rows of tilesX), then · A into the interleaved output rows.
    static func outputTransform2(_ m: UnsafePointer<Float>, tilesX: Int, stride: Int, bias b: Float,
                                 scratch: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Float>) {
        // Eight tiles at a time, reading `m`'s rows up to 7 floats past tilesX as `outputTransform4` does.
        let rs = phaseStride(tilesX)
        let s = scratch, d = s + 4 * rs
        for j in 0..<4 {
            let p0 = m + j * stride, p1 = p0 + 4 * stride, p2 = p1 + 4 * stride, p3 = p2 + 4 * stride
            let sj = s + j * rs, dj = d + j * rs
            forEachVector(tilesX) { tx, _ in
                let v1 = vector(p1 + tx), v2 = vector(p2 + tx)
                store(vector(p0 + tx) + v1 + v2, sj + tx)
                store(v1 - v2 - vector(p3 + tx), dj + tx)
            }
        }
        @inline(__always) func transformRow(_ u: UnsafeMutablePointer<Float>, into row: UnsafeMutablePointer<Float>) {
            let u0 = u, u1 = u + rs, u2 = u1 + rs, u3 = u2 + rs
            forEachVector(tilesX) { tx, lanes in
                let v1 = vector(u1 + tx), v2 = vector(u2 + tx)
                let c0 = vector(u0 + tx) + v1 + v2 + b
                let c1 = v1 - v2 - vector(u3 + tx) + b
                let out = row + 2 * tx
                for l in 0..<lanes {
                    out[2 * l] = c0[l]
                    out[2 * l + 1] = c1[l]
                }
            }
        }
        transformRow(s, into: rows)
        transformRow(d, into: rows + 2 * tilesX)
    }

    // MARK: F(4×4, 3×3)

    /// V_ξ[t] = (Bᵀ d B)_ξ for every tile of `plane` with Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0;
    /// 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1], laid out as `inputTransform2`'s; `rows`: `scratchCount(.four,
    /// paddedWidth:tilesX:)` floats. Per row of tiles: Bᵀ d as whole-row vector arithmetic; each of its six rows
    /// split by x mod 4 (a[4t + p] at phase p, t ≤ tilesX); then · B on eight tiles at a time from the phases'
    /// contiguous vectors. (Written as loops over the tiles with stride-4 reads, the second pass compiled to scalar
    /// code: 90 % of the transform's samples in perf of a 256² conversion on the Zen 5, 2026-12-03. The same
    /// arithmetic in the same order, so the same bits.)
    static func inputTransform4(_ plane: UnsafePointer<Float>, _ l: TileLayout, rows: UnsafeMutablePointer<Float>,
                                into out: UnsafeMutablePointer<Float>, stride: Int) {
        let pw = l.paddedWidth, tilesX = l.tilesX, ps = phaseStride(tilesX)
        let a0 = rows, a1 = a0 + pw, a2 = a1 + pw, a3 = a2 + pw, a4 = a3 + pw, a5 = a4 + pw
        let phase = rows + 6 * pw   // 4 phases of ps floats
        phase.update(repeating: 0, count: 4 * ps)   // the lanes read past tilesX hold zeros, never stored
        for ty in 0..<l.tilesY {
            let r0 = plane + 4 * ty * pw, r1 = r0 + pw, r2 = r1 + pw, r3 = r2 + pw, r4 = r3 + pw, r5 = r4 + pw
            for x in 0..<pw {
                let d1 = r1[x], d2 = r2[x], d3 = r3[x], d4 = r4[x]
                a0[x] = 4 * r0[x] - 5 * d2 + d4
                a1[x] = d3 + d4 - 4 * (d1 + d2)
                a2[x] = d4 - d3 + 4 * (d1 - d2)
                a3[x] = d4 - d2 + 2 * (d3 - d1)
                a4[x] = d4 - d2 + 2 * (d1 - d3)
                a5[x] = 4 * d1 - 5 * d3 + r5[x]
            }
            let base = out + ty * tilesX
            for i in 0..<6 {
                split(rows + i * pw, phases: 4, tilesX: tilesX, into: phase, phaseStride: ps)
                let p0 = phase, p1 = p0 + ps, p2 = p1 + ps, p3 = p2 + ps
                let o = base + (6 * i) * stride
                forEachVector(tilesX) { t, lanes in
                    let e0 = vector(p0 + t), e1 = vector(p1 + t), e2 = vector(p2 + t), e3 = vector(p3 + t)
                    let e4 = vector(p0 + t + 1), e5 = vector(p1 + t + 1)
                    store(4 * e0 - 5 * e2 + e4, o + t, lanes)
                    store(e3 + e4 - 4 * (e1 + e2), o + stride + t, lanes)
                    store(e4 - e3 + 4 * (e1 - e2), o + 2 * stride + t, lanes)
                    store(e4 - e2 + 2 * (e3 - e1), o + 3 * stride + t, lanes)
                    store(e4 - e2 + 2 * (e1 - e3), o + 4 * stride + t, lanes)
                    store(4 * e1 - 5 * e3 + e5, o + 5 * stride + t, lanes)
                }
            }
        }
    }

    /// One row of tiles of y = Aᵀ M A + bias with Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]:
    /// as `outputTransform2`, with 4 output rows (4·tilesX wide) and `scratch` of 4 × 6 rows of `phaseStride`.
    /// Eight tiles at a time on vectors; `m`'s rows are read up to 7 floats past tilesX, which `positionStride`'s
    /// padding keeps inside the buffer (those lanes are never stored). (As plain loops over the tiles, both passes
    /// compiled to scalar code: 15.6 % of a 256² conversion's samples.)
    static func outputTransform4(_ m: UnsafePointer<Float>, tilesX: Int, stride: Int, bias b: Float,
                                 scratch: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Float>) {
        let rs = phaseStride(tilesX)
        // Aᵀ M: scratch[k][j] (row k of the output tile, column j of the transformed tile).
        for j in 0..<6 {
            let p0 = m + j * stride, p1 = p0 + 6 * stride, p2 = p1 + 6 * stride
            let p3 = p2 + 6 * stride, p4 = p3 + 6 * stride, p5 = p4 + 6 * stride
            let s0 = scratch + j * rs, s1 = s0 + 6 * rs, s2 = s1 + 6 * rs, s3 = s2 + 6 * rs
            forEachVector(tilesX) { tx, _ in
                let v1 = vector(p1 + tx), v2 = vector(p2 + tx), v3 = vector(p3 + tx), v4 = vector(p4 + tx)
                let plus12 = v1 + v2, minus12 = v1 - v2
                let plus34 = v3 + v4, minus34 = v3 - v4
                store(vector(p0 + tx) + plus12 + plus34, s0 + tx)
                store(minus12 + 2 * minus34, s1 + tx)
                store(plus12 + 4 * plus34, s2 + tx)
                store(minus12 + 8 * minus34 + vector(p5 + tx), s3 + tx)
            }
        }
        // (Aᵀ M) A along each row k, into output row k (interleaving the four columns of each tile).
        for k in 0..<4 {
            let s = scratch + 6 * k * rs, row = rows + 4 * k * tilesX
            let q0 = s, q1 = q0 + rs, q2 = q1 + rs, q3 = q2 + rs, q4 = q3 + rs, q5 = q4 + rs
            forEachVector(tilesX) { tx, lanes in
                let v1 = vector(q1 + tx), v2 = vector(q2 + tx), v3 = vector(q3 + tx), v4 = vector(q4 + tx)
                let plus12 = v1 + v2, minus12 = v1 - v2
                let plus34 = v3 + v4, minus34 = v3 - v4
                let c0 = vector(q0 + tx) + plus12 + plus34 + b
                let c1 = minus12 + 2 * minus34 + b
                let c2 = plus12 + 4 * plus34 + b
                let c3 = minus12 + 8 * minus34 + vector(q5 + tx) + b
                let out = row + 4 * tx
                for l in 0..<lanes {
                    out[4 * l] = c0[l]
                    out[4 * l + 1] = c1[l]
                    out[4 * l + 2] = c2[l]
                    out[4 * l + 3] = c3[l]
                }
            }
        }
    }

    // MARK: Vector helpers of the transforms

    /// The lanes the transforms work on at once.
    typealias Lanes = SIMD8<Float>

    /// The distance between the transforms' scratch rows of (up to) tilesX + 1 values: room for a whole vector
    /// read at any tile below tilesX, one further.
    static func phaseStride(_ tilesX: Int) -> Int { (tilesX + 8 + 7) & ~7 }

    /// Floats of scratch `inputTransform2`/`inputTransform4` need for a padded width and tile count.
    static func inputScratchCount(_ tile: WinogradTile, paddedWidth: Int, tilesX: Int) -> Int {
        tile.inputSide * paddedWidth + tile.rawValue * phaseStride(tilesX)
    }

    /// `body(t, lanes)` for t = 0, 8, 16, … < count, lanes = min(8, count − t).
    @inline(__always)
    private static func forEachVector(_ count: Int, _ body: (Int, Int) -> Void) {
        var t = 0
        while t < count {
            body(t, min(Lanes.scalarCount, count - t))
            t += Lanes.scalarCount
        }
    }

    @inline(__always)
    private static func vector(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

    @inline(__always)
    private static func vector(_ p: UnsafeMutablePointer<Float>) -> Lanes { vector(UnsafePointer(p)) }

    /// Stores all lanes of `v` at `p` (scratch rows with room for them).
    @inline(__always)
    private static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
    }

    /// Stores the first `lanes` lanes of `v` at `p`.
    @inline(__always)
    private static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
        if lanes == Lanes.scalarCount { store(v, p) } else { for l in 0..<lanes { p[l] = v[l] } }
    }

    /// phase p (at `into + p·phaseStride`) of a row: row[k·t + p] for t ≤ tilesX where that lies in the row
    /// (k = `phases`, 2 or 4; the row holds k·tilesX + 2 values). Fixed k and wrapping index arithmetic, so that
    /// the compiler turns the loop into vector loads and shuffles.
    @inline(__always)
    private static func split(_ row: UnsafePointer<Float>, phases k: Int, tilesX: Int,
                              into phase: UnsafeMutablePointer<Float>, phaseStride ps: Int) {
        if k == 4 {
            let q0 = phase, q1 = q0 + ps, q2 = q1 + ps, q3 = q2 + ps
            var t = 0
            while t + 8 <= tilesX {
                // Four vectors of 8 consecutive values: 8 tiles' worth; lane l of phase p is w[(4l + p) / 8][(4l + p) % 8].
                let x = t &* 4
                let w0 = vector(row + x), w1 = vector(row + x + 8), w2 = vector(row + x + 16), w3 = vector(row + x + 24)
                store(Lanes(w0[0], w0[4], w1[0], w1[4], w2[0], w2[4], w3[0], w3[4]), q0 + t)
                store(Lanes(w0[1], w0[5], w1[1], w1[5], w2[1], w2[5], w3[1], w3[5]), q1 + t)
                store(Lanes(w0[2], w0[6], w1[2], w1[6], w2[2], w2[6], w3[2], w3[6]), q2 + t)
                store(Lanes(w0[3], w0[7], w1[3], w1[7], w2[3], w2[7], w3[3], w3[7]), q3 + t)
                t += 8
            }
            for t in t..<tilesX {
                let x = t &* 4
                q0[t] = row[x]
                q1[t] = row[x &+ 1]
                q2[t] = row[x &+ 2]
                q3[t] = row[x &+ 3]
            }
        } else {
            splitPairs(row, tilesX: tilesX, into: phase, phaseStride: ps)
        }
        phase[tilesX] = row[k * tilesX]
        phase[ps + tilesX] = row[k * tilesX + 1]
    }

    /// row[2t] at phase[t] and row[2t + 1] at phase[ps + t], t < tilesX.
    @inline(__always)
    private static func splitPairs(_ row: UnsafePointer<Float>, tilesX: Int, into phase: UnsafeMutablePointer<Float>,
                                   phaseStride ps: Int) {
        let q0 = phase, q1 = q0 + ps
        var t = 0
        while t + 8 <= tilesX {
            let w0 = vector(row + t &* 2), w1 = vector(row + t &* 2 + 8)
            store(Lanes(w0[0], w0[2], w0[4], w0[6], w1[0], w1[2], w1[4], w1[6]), q0 + t)
            store(Lanes(w0[1], w0[3], w0[5], w0[7], w1[1], w1[3], w1[5], w1[7]), q1 + t)
            t += 8
        }
        for t in t..<tilesX {
            q0[t] = row[t &* 2]
            q1[t] = row[t &* 2 &+ 1]
        }
    }

    @inline(__always)
    private static func splitPairs(_ row: UnsafeMutablePointer<Float>, tilesX: Int,
                                   into phase: UnsafeMutablePointer<Float>, phaseStride ps: Int) {
        splitPairs(UnsafePointer(row), tilesX: tilesX, into: phase, phaseStride: ps)
    }

    @inline(__always)
    private static func split(_ row: UnsafeMutablePointer<Float>, phases k: Int, tilesX: Int,
                              into phase: UnsafeMutablePointer<Float>, phaseStride ps: Int) {
        split(UnsafePointer(row), phases: k, tilesX: tilesX, into: phase, phaseStride: ps)
    }
}
