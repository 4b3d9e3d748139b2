import Foundation

/// 3×3, stride-1 convolution by Winograd's minimal filtering algorithm F(2×2, 3×3)
/// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016, §4).
///
/// Each 2×2 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A for the 4×4 input tile d and the 3×3 kernel g. Summed over
/// input channels, the element-wise products become 16 independent GEMMs, M_ξ (Cout × tiles) = U_ξ (Cout × Cin) ·
/// V_ξ (Cin × tiles), one per position ξ of the 4×4 transformed tile: 16·Cout·Cin multiply-adds per tile instead of
/// 36·Cout·Cin, 2.25× fewer. The transforms only add, subtract and halve, so the result agrees with the direct
/// convolution to float32 rounding. Used for the ResNet generator's residual convolutions (reflection-padded 3×3)
/// forward and, with the flipped and transposed kernel, for their gradient with respect to the input.
enum Winograd3x3 {
    /// Transformed kernels U_ξ = G g Gᵀ, stored `16 × outputChannels × inputChannels`. With `adjoint`, the
    /// kernel of the input-gradient convolution instead: g'[c][o] = g[o][c] rotated by 180°, stored
    /// `16 × inputChannels × outputChannels`. `weight` is PyTorch's `outputChannels × inputChannels × 3 × 3`.
    static func transformKernels(_ weight: UnsafePointer<Float>, outputChannels: Int, inputChannels: Int,
                                 adjoint: Bool, into u: UnsafeMutablePointer<Float>) {
        let pairs = outputChannels * inputChannels
        parallelFor(outputChannels, minimumPerThread: 8) { range in
            for o in range {
                for c in 0..<inputChannels {
                    let w = weight + (o * inputChannels + c) * 9
                    var g = (w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8])
                    if adjoint { g = (g.8, g.7, g.6, g.5, g.4, g.3, g.2, g.1, g.0) }
                    // Gg (4 × 3), G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], on the kernel's rows; then (Gg)Gᵀ along each row.
                    let k0 = SIMD4<Float>(g.0, g.1, g.2, 0), k1 = SIMD4<Float>(g.3, g.4, g.5, 0)
                    let k2 = SIMD4<Float>(g.6, g.7, g.8, 0)
                    let s0 = k0, s1 = 0.5 * (k0 + k1 + k2), s2 = 0.5 * (k0 - k1 + k2), s3 = k2
                    let index = adjoint ? c * outputChannels + o : o * inputChannels + c
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
            }
        }
    }

    /// y (`outputChannels × outputHeight × outputWidth`, outputHeight = height + 2·padding − 2) = the 3×3
    /// cross-correlation of `image` (`channels × height × width`, padded by `padding` with zeros or its
    /// reflection) with the kernels `u` from `transformKernels`, plus `bias` when given.
    static func convolve(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, padding: Int,
                         paddingMode: PaddingMode, kernels u: UnsafePointer<Float>, outputChannels: Int,
                         bias: UnsafePointer<Float>?, output y: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let outputHeight = height + 2 * padding - 2, outputWidth = width + 2 * padding - 2
        let tilesY = (outputHeight + 1) / 2, tilesX = (outputWidth + 1) / 2, tiles = tilesY * tilesX
        // The padded image, extended with zeros to whole tiles.
        let ph = 2 * tilesY + 2, pw = 2 * tilesX + 2
        let padded = workspace.buffer(Workspace.Slot.padded, count: channels * ph * pw)
        let v = workspace.buffer(Workspace.Slot.columns, count: 16 * channels * tiles)
        let m = workspace.buffer(Workspace.Slot.columns2, count: 16 * outputChannels * tiles)
        let source = ConvGeometry(channels: channels, height: height, width: width, kernelHeight: 3, kernelWidth: 3,
                                  stride: 1, padding: padding, paddingMode: paddingMode,
                                  outputHeight: outputHeight, outputWidth: outputWidth)

        // Input transform: V_ξ[c][t] = (Bᵀ d B)_ξ, Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]. Per row of
        // tiles: Bᵀ d as whole-row vector arithmetic, then · B as sixteen loops over the tiles with stride-2
        // reads and contiguous writes (both vectorise).
        parallelFor(channels) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * pw) { rows in
                let a0 = rows.baseAddress!, a1 = a0 + pw, a2 = a1 + pw, a3 = a2 + pw
                for c in range {
                    let plane = padded + c * ph * pw
                    source.padPlane(image + c * height * width, into: plane, paddedHeight: ph, paddedWidth: pw)
                    let stride = channels * tiles
                    for ty in 0..<tilesY {
                        let r0 = plane + 2 * ty * pw, r1 = r0 + pw, r2 = r1 + pw, r3 = r2 + pw
                        for x in 0..<pw {
                            a0[x] = r0[x] - r2[x]
                            a1[x] = r1[x] + r2[x]
                            a2[x] = r2[x] - r1[x]
                            a3[x] = r1[x] - r3[x]
                        }
                        let base = v + c * tiles + ty * tilesX
                        @inline(__always) func transformRow(_ i: Int, _ a: UnsafeMutablePointer<Float>) {
                            let o0 = base + (4 * i) * stride, o1 = o0 + stride, o2 = o1 + stride, o3 = o2 + stride
                            for tx in 0..<tilesX {
                                let x = 2 * tx
                                o0[tx] = a[x] - a[x + 2]
                                o1[tx] = a[x + 1] + a[x + 2]
                                o2[tx] = a[x + 2] - a[x + 1]
                                o3[tx] = a[x + 1] - a[x + 3]
                            }
                        }
                        transformRow(0, a0)
                        transformRow(1, a1)
                        transformRow(2, a2)
                        transformRow(3, a3)
                    }
                }
            }
        }

        // 16 GEMMs, shared out whole between the threads (each single-threaded).
        let threads = ComputeThreads.serial ? 1 : min(ComputeThreads.count, 16)
        let pairs = outputChannels * channels
        ComputeThreads.fork(threads) { part in
            var xi = part
            while xi < 16 {
                BLAS.sgemm(transA: false, transB: false, m: outputChannels, n: tiles, k: channels,
                           a: u + xi * pairs, lda: channels, b: v + xi * channels * tiles, ldb: tiles,
                           beta: 0, c: m + xi * outputChannels * tiles, ldc: tiles)
                xi += threads
            }
        }

        // Output transform: y = Aᵀ M A, Aᵀ = [1 1 1 0; 0 1 −1 −1]; per row of tiles, Aᵀ M as vector arithmetic
        // over the tiles, then · A into two interleaved output rows (padded to whole tiles, then copied).
        parallelFor(outputChannels) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * tilesX + 4 * tilesX) { scratch in
                let s = scratch.baseAddress!, d = s + 4 * tilesX, rows = d + 4 * tilesX
                for o in range {
                    let stride = outputChannels * tiles
                    let yo = y + o * outputHeight * outputWidth
                    let b = bias?[o] ?? 0
                    for ty in 0..<tilesY {
                        let mo = m + o * tiles + ty * tilesX
                        for j in 0..<4 {
                            let p0 = mo + j * stride, p1 = p0 + 4 * stride, p2 = p1 + 4 * stride, p3 = p2 + 4 * stride
                            let sj = s + j * tilesX, dj = d + j * tilesX
                            for tx in 0..<tilesX {
                                sj[tx] = p0[tx] + p1[tx] + p2[tx]
                                dj[tx] = p1[tx] - p2[tx] - p3[tx]
                            }
                        }
                        let top = rows, bottom = rows + 2 * tilesX
                        @inline(__always) func transformRow(_ u: UnsafeMutablePointer<Float>, into row: UnsafeMutablePointer<Float>) {
                            let u0 = u, u1 = u + tilesX, u2 = u1 + tilesX, u3 = u2 + tilesX
                            for tx in 0..<tilesX {
                                row[2 * tx] = u0[tx] + u1[tx] + u2[tx] + b
                                row[2 * tx + 1] = u1[tx] - u2[tx] - u3[tx] + b
                            }
                        }
                        transformRow(s, into: top)
                        transformRow(d, into: bottom)
                        let oy = 2 * ty
                        (yo + oy * outputWidth).update(from: top, count: outputWidth)
                        if oy + 1 < outputHeight { (yo + (oy + 1) * outputWidth).update(from: bottom, count: outputWidth) }
                    }
                }
            }
        }
    }
}
