/// A grey quick-look image made readable: enlarged by a whole factor (nearest neighbour, so voxels stay sharp
/// squares) until its long side is at least `minimumLongSide` pixels, with a caption band above (e.g. plane and
/// slice number) and, below, a grey-level scale bar labelled with the values its ends and centre stand for (e.g.
/// −1024 … 2000 HU), so that a reader can tell what a shade means.
public enum AnnotatedPreview {
    /// A labelled scale bar: the grey ramp 0…255 spans `lower`…`upper` in `unit`; `x`/`width` place it in the
    /// source image's columns (before enlargement), e.g. under the sCT half of an MR | sCT preview.
    public struct ScaleBar: Sendable, Hashable {
        public var lower: Float
        public var upper: Float
        public var unit: String
        public var x: Int
        public var width: Int
        public init(lower: Float, upper: Float, unit: String, x: Int, width: Int) {
            self.lower = lower
            self.upper = upper
            self.unit = unit
            self.x = x
            self.width = width
        }
    }

    /// The whole enlargement factor that brings the long side of a `width` × `height` image to at least
    /// `minimumLongSide` (1 when it is already that large).
    public static func factor(width: Int, height: Int, minimumLongSide: Int) -> Int {
        let long = max(1, width, height)
        return max(1, (minimumLongSide + long - 1) / long)
    }

    /// `pixels` (`width` × `height` grey, row-major) enlarged, with `caption` above and `scaleBar` below.
    public static func render(_ pixels: [UInt8], width: Int, height: Int, minimumLongSide: Int = 512,
                              caption: String, scaleBar: ScaleBar?) -> PNGPixels {
        precondition(pixels.count == width * height && width > 0 && height > 0, "preview of \(pixels.count) pixels for \(width)×\(height)")
        let k = factor(width: width, height: height, minimumLongSide: minimumLongSide)
        let textScale = max(1, min(3, k))
        let line = BitmapFont.lineHeight * textScale
        let margin = 2 * textScale
        let captionBand = line + 2 * margin
        let barHeight = scaleBar == nil ? 0 : 4 * textScale
        let barBand = scaleBar == nil ? 0 : margin + barHeight + margin + line + margin
        let outWidth = width * k, outHeight = captionBand + height * k + barBand
        var out = [UInt8](repeating: 0, count: outWidth * outHeight)
        // The enlarged image.
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<(height * k) {
                    let s = (y / k) * width, d = (captionBand + y) * outWidth
                    for x in 0..<outWidth { dst[d + x] = src[s + x / k] }
                }
            }
        }
        BitmapFont.draw(caption, x: margin, y: margin, scale: textScale, value: 255,
                        into: &out, width: outWidth, height: outHeight, maxX: outWidth)
        if let bar = scaleBar {
            let x0 = max(0, min(outWidth - 1, bar.x * k)), x1 = max(x0 + 1, min(outWidth, (bar.x + bar.width) * k))
            let top = captionBand + height * k + margin
            for y in top..<(top + barHeight) {
                for x in x0..<x1 {
                    out[y * outWidth + x] = UInt8((Double(x - x0) / Double(max(1, x1 - x0 - 1)) * 255).rounded())
                }
            }
            let textY = top + barHeight + margin
            func label(_ value: Float) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
            let left = label(bar.lower), right = label(bar.upper) + " " + bar.unit
            let middle = label((bar.lower + bar.upper) / 2)
            BitmapFont.draw(left, x: x0, y: textY, scale: textScale, value: 255,
                            into: &out, width: outWidth, height: outHeight, maxX: outWidth)
            let rightWidth = BitmapFont.width(of: right, scale: textScale)
            BitmapFont.draw(right, x: max(x0, x1 - rightWidth), y: textY, scale: textScale, value: 255,
                            into: &out, width: outWidth, height: outHeight, maxX: outWidth)
            let middleWidth = BitmapFont.width(of: middle, scale: textScale)
            let mx = (x0 + x1 - middleWidth) / 2
            if mx > x0 + BitmapFont.width(of: left, scale: textScale) + margin,
               mx + middleWidth + margin < x1 - rightWidth {
                BitmapFont.draw(middle, x: mx, y: textY, scale: textScale, value: 255,
                                into: &out, width: outWidth, height: outHeight, maxX: outWidth)
            }
        }
        return PNGPixels(width: outWidth, height: outHeight, channels: 1, pixels: out)
    }
}
