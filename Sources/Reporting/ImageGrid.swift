import Foundation

/// A display window: values at or below `lower` are black, at or above `upper` white, linear between
/// (DICOM PS3.3 C.11.2.1.2 "window center/width", without its half-pixel offsets).
public struct IntensityWindow: Sendable, Hashable, Codable {
    public var lower: Float
    public var upper: Float

    public init(lower: Float, upper: Float) {
        self.lower = lower
        self.upper = upper
    }

    /// A window given as width W and level (centre) L, e.g. W 1500 / L 300 for head CT with bone.
    public init(width: Float, level: Float) {
        self.init(lower: level - width / 2, upper: level + width / 2)
    }

    /// [-1, 1]: network inputs and outputs.
    public static let normalized = IntensityWindow(lower: -1, upper: 1)
    /// W 1500 / L 300 HU ([-450, 1050]): soft tissue and bone of the head together.
    public static let ctHeadBone = IntensityWindow(width: 1500, level: 300)
    /// W 80 / L 40 HU: the brain window.
    public static let ctBrain = IntensityWindow(width: 80, level: 40)
    /// [-1024, 1500] HU: air to dense bone.
    public static let ctFullRange = IntensityWindow(lower: -1024, upper: 1500)

    /// This window (in the original units, e.g. HU) for images that were mapped linearly from `range` onto
    /// [-1, 1], e.g. `IntensityWindow.ctHeadBone.normalized(from: -1024...3000)` for network CT outputs.
    public func normalized(from range: ClosedRange<Float>) -> IntensityWindow {
        let span = range.upperBound - range.lowerBound
        func map(_ v: Float) -> Float { span > 0 ? 2 * (v - range.lowerBound) / span - 1 : 0 }
        return IntensityWindow(lower: map(lower), upper: map(upper))
    }

    /// The 8-bit gray level of `value`; non-finite values are black.
    @inlinable public func grayLevel(_ value: Float) -> UInt8 {
        guard value.isFinite else { return 0 }
        let span = upper - lower
        guard span > 0 else { return value >= upper ? 255 : 0 }
        let t = (value - lower) / span
        if t <= 0 { return 0 }
        if t >= 1 { return 255 }
        return UInt8((t * 255).rounded())
    }
}

/// One image of a grid: a 2-D float image, row-major with the top row first, its display window and a label.
public struct GridImage: Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [Float]
    public var window: IntensityWindow
    public var label: String?

    public init(width: Int, height: Int, pixels: [Float], window: IntensityWindow, label: String? = nil) {
        self.width = width
        self.height = height
        self.pixels = pixels
        self.window = window
        self.label = label
    }

    /// The same image upside down (e.g. an axial slice stored with anterior at the last row, shown anterior up).
    public func flippedVertically() -> GridImage {
        var out = pixels
        if pixels.count == width * height {
            for r in 0..<height {
                let src = (height - 1 - r) * width
                out.replaceSubrange(r * width..<(r + 1) * width, with: pixels[src..<src + width])
            }
        }
        return GridImage(width: width, height: height, pixels: out, window: window, label: label)
    }
}

/// Rows of windowed float images composed into one gray PNG, e.g. a training sample grid
/// (real MR | synthetic CT | reconstructed MR, then real CT | synthetic MR | reconstructed CT) or a conversion
/// preview. Each column is as wide as its widest image and each row as tall as its tallest; smaller images are
/// centred. Labels, when any image of a row has one, are drawn in a band above that row's images.
public struct ImageGrid: Sendable {
    public var rows: [[GridImage]]
    /// Nearest-neighbour magnification of every image (1 = one pixel per image pixel).
    public var scale: Int
    /// Pixels between images and around the border.
    public var spacing: Int
    /// Magnification of the 5×7 label font.
    public var labelScale: Int
    /// Gray level of the background between images.
    public var background: UInt8
    /// Gray level of label text.
    public var labelColor: UInt8

    public init(rows: [[GridImage]], scale: Int = 1, spacing: Int = 2, labelScale: Int = 1,
                background: UInt8 = 48, labelColor: UInt8 = 255) {
        self.rows = rows
        self.scale = scale
        self.spacing = spacing
        self.labelScale = labelScale
        self.background = background
        self.labelColor = labelColor
    }

    /// An error in the grid's description (an image whose pixel count does not match its size, or no images).
    public struct LayoutError: Error, CustomStringConvertible, Sendable {
        public var reason: String
        public var description: String { reason }
    }

    /// The grid as 8-bit gray pixels.
    public func render() throws -> PNGPixels {
        let scale = max(1, self.scale), spacing = max(0, self.spacing), labelScale = max(1, self.labelScale)
        guard rows.contains(where: { !$0.isEmpty }) else { throw LayoutError(reason: "an image grid needs at least one image") }
        for (r, row) in rows.enumerated() {
            for (c, image) in row.enumerated() where image.width <= 0 || image.height <= 0
                || image.pixels.count != image.width * image.height {
                throw LayoutError(reason: "grid image at row \(r + 1), column \(c + 1): \(image.pixels.count) pixels for \(image.width)×\(image.height)")
            }
        }
        let columnCount = rows.map(\.count).max() ?? 0
        var columnWidths = [Int](repeating: 0, count: columnCount)
        for row in rows {
            for (c, image) in row.enumerated() { columnWidths[c] = max(columnWidths[c], image.width * scale) }
        }
        let labelBand = BitmapFont.lineHeight * labelScale + 2
        let rowHeights = rows.map { row in (row.map { $0.height * scale }.max() ?? 0) }
        let rowLabelBands = rows.map { row in row.contains { !($0.label ?? "").isEmpty } ? labelBand : 0 }
        let width = columnWidths.reduce(spacing) { $0 + $1 + spacing }
        let height = zip(rowHeights, rowLabelBands).reduce(spacing) { $0 + $1.0 + $1.1 + spacing }
        var pixels = [UInt8](repeating: background, count: width * height)

        var y = spacing
        for (r, row) in rows.enumerated() {
            var x = spacing
            for (c, image) in row.enumerated() {
                let cellWidth = columnWidths[c]
                let tileWidth = image.width * scale, tileHeight = image.height * scale
                let ox = x + (cellWidth - tileWidth) / 2
                let oy = y + rowLabelBands[r] + (rowHeights[r] - tileHeight) / 2
                if let label = image.label, !label.isEmpty {
                    let textWidth = BitmapFont.width(of: label, scale: labelScale)
                    let tx = x + max(0, (cellWidth - textWidth) / 2)
                    BitmapFont.draw(label, x: tx, y: y + 1, scale: labelScale, value: labelColor,
                                    into: &pixels, width: width, height: height, maxX: x + cellWidth)
                }
                image.pixels.withUnsafeBufferPointer { src in
                    pixels.withUnsafeMutableBufferPointer { dst in
                        for py in 0..<tileHeight {
                            let srcRow = (py / scale) * image.width
                            let dstRow = (oy + py) * width + ox
                            for px in 0..<tileWidth {
                                dst[dstRow + px] = image.window.grayLevel(src[srcRow + px / scale])
                            }
                        }
                    }
                }
                x += cellWidth + spacing
            }
            y += rowLabelBands[r] + rowHeights[r] + spacing
        }
        return PNGPixels(width: width, height: height, channels: 1, pixels: pixels)
    }

    /// Renders the grid and writes it as an 8-bit gray PNG (atomically).
    public func write(to url: URL) throws {
        let image: PNGPixels
        do { image = try render() } catch let error as LayoutError {
            throw PNGError(path: url.path, reason: error.reason)
        }
        try PNGImage.writeGray8(image.pixels, width: image.width, height: image.height, to: url)
    }
}
