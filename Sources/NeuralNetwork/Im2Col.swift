import Foundation

/// Padding applied around a convolution's input: zeros (`Conv2d(padding:)`) or the reflection of the border
/// (`ReflectionPad2d` followed by a convolution, folded into the gather so no padded copy is made).
public enum PaddingMode: String, Codable, Sendable {
    case zeros
    case reflect
}

/// The geometry of a convolution seen as a gather: an image of `channels × height × width`, a
/// `kernelHeight × kernelWidth` window moved by `stride` over the image padded by `padding` on each side,
/// giving an `outputHeight × outputWidth` grid. Column matrix rows are (channel, ky, kx), columns grid points.
struct ConvGeometry: Equatable {
    var channels: Int
    var height: Int
    var width: Int
    var kernelHeight: Int
    var kernelWidth: Int
    var stride: Int
    var padding: Int
    var paddingMode: PaddingMode
    var outputHeight: Int
    var outputWidth: Int

    var rows: Int { channels * kernelHeight * kernelWidth }
    var gridCount: Int { outputHeight * outputWidth }

    /// Floats a column buffer may hold before the grid is tiled over output rows (bounds memory).
    nonisolated(unsafe) static var columnBudget = 1 << 22

    /// Output rows per tile: as few tiles as the budget allows, of equal height (no small last tile).
    var rowsPerTile: Int {
        let most = max(1, min(outputHeight, Self.columnBudget / max(1, rows * outputWidth)))
        let tiles = (outputHeight + most - 1) / most
        return (outputHeight + tiles - 1) / tiles
    }

    @inline(__always)
    func sourceIndex(_ i: Int, size: Int) -> Int {
        if i >= 0 && i < size { return i }
        if paddingMode == .zeros { return -1 }
        return i < 0 ? -i : 2 * (size - 1) - i
    }

    /// The grid columns `ox` whose source column `ox·stride − padding + kx` lies inside the image.
    @inline(__always)
    func interior(kx: Int) -> Range<Int> {
        // ox*s - p + kx >= 0  <=> ox >= ceil((p - kx)/s);  ox*s - p + kx <= W-1  <=> ox <= floor((W-1+p-kx)/s)
        let lo = min(outputWidth, padding - kx > 0 ? (padding - kx + stride - 1) / stride : 0)
        let hiNum = width - 1 + padding - kx
        let hi = hiNum < 0 ? 0 : min(outputWidth, hiNum / stride + 1)
        return lo..<max(lo, hi)
    }

    /// Gathers the column matrix of grid rows `oy0..<oy1` of one image: `rows × ((oy1−oy0)·outputWidth)`.
    func im2col(_ image: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>, oy0: Int, oy1: Int) {
        let ld = (oy1 - oy0) * outputWidth
        let g = self
        parallelFor(rows, minimumPerThread: 4) { range in
            for r in range {
                let kx = r % g.kernelWidth
                let ky = (r / g.kernelWidth) % g.kernelHeight
                let c = r / (g.kernelWidth * g.kernelHeight)
                let plane = image + c * g.height * g.width
                let inner = g.interior(kx: kx)
                var dst = cols + r * ld
                for oy in oy0..<oy1 {
                    let iy = g.sourceIndex(oy * g.stride - g.padding + ky, size: g.height)
                    if iy < 0 {
                        dst.update(repeating: 0, count: g.outputWidth)
                    } else {
                        let src = plane + iy * g.width
                        for ox in 0..<inner.lowerBound {
                            let ix = g.sourceIndex(ox * g.stride - g.padding + kx, size: g.width)
                            dst[ox] = ix < 0 ? 0 : src[ix]
                        }
                        if !inner.isEmpty {
                            let start = inner.lowerBound * g.stride - g.padding + kx
                            if g.stride == 1 {
                                (dst + inner.lowerBound).update(from: src + start, count: inner.count)
                            } else {
                                let s = src + start, d = dst + inner.lowerBound, st = g.stride
                                for j in 0..<inner.count { d[j] = s[j * st] }
                            }
                        }
                        for ox in inner.upperBound..<g.outputWidth {
                            let ix = g.sourceIndex(ox * g.stride - g.padding + kx, size: g.width)
                            dst[ox] = ix < 0 ? 0 : src[ix]
                        }
                    }
                    dst += g.outputWidth
                }
            }
        }
    }

    /// The adjoint of `im2col`: adds the column matrix of grid rows `oy0..<oy1` into `image` (reflected
    /// positions fold back onto the pixels they copied, zero-padding positions are dropped).
    func col2im(_ cols: UnsafePointer<Float>, _ image: UnsafeMutablePointer<Float>, oy0: Int, oy1: Int) {
        let ld = (oy1 - oy0) * outputWidth
        let g = self
        parallelFor(channels) { range in
            for c in range {
                let plane = image + c * g.height * g.width
                for ky in 0..<g.kernelHeight {
                    for kx in 0..<g.kernelWidth {
                        let r = (c * g.kernelHeight + ky) * g.kernelWidth + kx
                        let inner = g.interior(kx: kx)
                        var src = cols + r * ld
                        for oy in oy0..<oy1 {
                            let iy = g.sourceIndex(oy * g.stride - g.padding + ky, size: g.height)
                            if iy >= 0 {
                                let dst = plane + iy * g.width
                                for ox in 0..<inner.lowerBound {
                                    let ix = g.sourceIndex(ox * g.stride - g.padding + kx, size: g.width)
                                    if ix >= 0 { dst[ix] += src[ox] }
                                }
                                if !inner.isEmpty {
                                    let start = inner.lowerBound * g.stride - g.padding + kx
                                    let d = dst + start, s = src + inner.lowerBound, st = g.stride
                                    if st == 1 {
                                        for j in 0..<inner.count { d[j] += s[j] }
                                    } else {
                                        for j in 0..<inner.count { d[j * st] += s[j] }
                                    }
                                }
                                for ox in inner.upperBound..<g.outputWidth {
                                    let ix = g.sourceIndex(ox * g.stride - g.padding + kx, size: g.width)
                                    if ix >= 0 { dst[ix] += src[ox] }
                                }
                            }
                            src += g.outputWidth
                        }
                    }
                }
            }
        }
    }

    /// Copies one image into `padded` (`channels × (height+2p) × (width+2p)`), reflecting or zero-filling.
    func pad(_ image: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) {
        let g = self
        let ph = height + 2 * padding, pw = width + 2 * padding
        parallelFor(channels) { range in
            for c in range {
                g.padPlane(image + c * g.height * g.width, into: padded + c * ph * pw, paddedHeight: ph, paddedWidth: pw)
            }
        }
    }

    /// Copies one channel plane into `plane` (`paddedHeight × paddedWidth`, at least the padded size), padded by
    /// zeros or reflection as this geometry says, and zero beyond the padded size (Winograd's whole tiles).
    func padPlane(_ src: UnsafePointer<Float>, into plane: UnsafeMutablePointer<Float>, paddedHeight: Int, paddedWidth: Int) {
        let usedHeight = height + 2 * padding, usedWidth = width + 2 * padding
        for py in 0..<paddedHeight {
            let row = plane + py * paddedWidth
            let iy = py < usedHeight ? sourceIndex(py - padding, size: height) : -1
            if iy < 0 { row.update(repeating: 0, count: paddedWidth); continue }
            let s = src + iy * width
            for px in 0..<padding {
                let ix = sourceIndex(px - padding, size: width)
                row[px] = ix < 0 ? 0 : s[ix]
            }
            (row + padding).update(from: s, count: width)
            for px in (padding + width)..<usedWidth {
                let ix = sourceIndex(px - padding, size: width)
                row[px] = ix < 0 ? 0 : s[ix]
            }
            if usedWidth < paddedWidth { (row + usedWidth).update(repeating: 0, count: paddedWidth - usedWidth) }
        }
    }

    /// The adjoint of `pad`: writes into `image` the gradient of the padded copy, folding reflections back.
    func unpad(_ padded: UnsafePointer<Float>, into image: UnsafeMutablePointer<Float>) {
        let g = self
        let ph = height + 2 * padding, pw = width + 2 * padding
        parallelFor(channels) { range in
            for c in range {
                let dst = image + c * g.height * g.width
                let src = padded + c * ph * pw
                for y in 0..<g.height {
                    (dst + y * g.width).update(from: src + (y + g.padding) * pw + g.padding, count: g.width)
                }
                if g.paddingMode == .zeros { continue }
                for py in 0..<ph {
                    let iy = g.sourceIndex(py - g.padding, size: g.height)
                    let row = src + py * pw
                    let drow = dst + iy * g.width
                    let interiorRow = py >= g.padding && py < g.padding + g.height
                    for px in 0..<pw {
                        let inside = interiorRow && px >= g.padding && px < g.padding + g.width
                        if inside { continue }
                        drow[g.sourceIndex(px - g.padding, size: g.width)] += row[px]
                    }
                }
            }
        }
    }
}
