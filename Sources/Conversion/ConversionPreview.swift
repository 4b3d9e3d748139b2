import Foundation
import NIfTI
import Preprocessing
import Reporting

/// A quick-look PNG of a conversion: the central axial slice of the MR and of the synthetic CT side by side,
/// in radiological convention (patient's right on the image's left, anterior up); written enlarged with a caption
/// and a HU scale bar (`annotated`), `image` being the plain one-pixel-per-voxel picture.
/// MR grey levels span its slice's 1st–99th percentiles; the sCT's span [−1024, 2000] HU. With a QA verdict its
/// summary (body inside the field, air and dense shares, histogram distance, warning codes) is written below the
/// images in the bitmap font.
public enum ConversionPreview {
    public static let ctWindow: (lower: Float, upper: Float) = (-1024, 2000)

    /// The long side of a written preview is at least this many pixels (voxels enlarged by a whole factor).
    public static let minimumLongSide = 512

    /// Writes `annotated(mr:syntheticCT:)`, with the QA summary below it when given, as an 8-bit grey PNG.
    public static func write(mr: Volume, syntheticCT: Volume, qa: QualityCheck? = nil, to url: URL) throws {
        var picture = annotated(mr: mr, syntheticCT: syntheticCT)
        if let qa {
            let (pixels, width, height) = annotate(picture.pixels, width: picture.width, height: picture.height,
                                                   lines: qa.summaryLines, scale: 2)
            picture = PNGPixels(width: width, height: height, channels: 1, pixels: pixels)
        }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try PNGImage.writeGray8(picture.pixels, width: picture.width, height: picture.height, to: url)
    }

    /// The preview as written: `image(mr:syntheticCT:)` enlarged to at least `minimumLongSide` pixels on its long
    /// side, captioned with the plane and slice ("AXIAL SLICE 18/36  MR | SCT") and with a HU scale bar under the
    /// sCT half spanning `ctWindow`.
    public static func annotated(mr: Volume, syntheticCT: Volume) -> PNGPixels {
        let (pixels, width, height) = image(mr: mr, syntheticCT: syntheticCT)
        let slices = CanonicalOrientation(grid: mr.grid, affine: mr.affine)?.canonicalGrid.nz ?? mr.grid.nz
        let half = (width - gap) / 2
        return AnnotatedPreview.render(pixels, width: width, height: height, minimumLongSide: minimumLongSide,
                                       caption: "AXIAL SLICE \(slices / 2 + 1)/\(slices)  MR | SCT",
                                       scaleBar: .init(lower: ctWindow.lower, upper: ctWindow.upper, unit: "HU",
                                                       x: half + gap, width: half))
    }

    /// Columns between the MR and the sCT in `image`.
    static let gap = 2

    /// The grey pixels (row-major, top row first), width and height of the preview.
    public static func image(mr: Volume, syntheticCT: Volume) -> (pixels: [UInt8], width: Int, height: Int) {
        let orientation = CanonicalOrientation(grid: mr.grid, affine: mr.affine)
        let canonical = orientation?.canonicalGrid ?? mr.grid
        let width = canonical.nx, height = canonical.ny, c = canonical.nz / 2
        func sourceIndex(_ a: Int, _ b: Int) -> Int {
            orientation?.sourceIndex(a, b, c) ?? mr.grid.index(a, b, c)
        }
        // (row, column) -> source voxel: column runs from the patient's right (canonical a high) to left,
        // rows from anterior (b high) to posterior.
        var indices = [Int](repeating: 0, count: width * height)
        for row in 0..<height {
            for column in 0..<width { indices[row * width + column] = sourceIndex(width - 1 - column, height - 1 - row) }
        }
        let mrValues = indices.map { mr.voxels[$0] }.filter(\.isFinite).sorted()
        let lower = mrValues.isEmpty ? 0 : mrValues[mrValues.count / 100]
        let upper = mrValues.isEmpty ? 1 : mrValues[min(mrValues.count - 1, mrValues.count * 99 / 100)]
        func grey(_ v: Float, _ lo: Float, _ hi: Float) -> UInt8 {
            guard hi > lo, v.isFinite else { return 0 }
            return UInt8(max(0, min(255, ((v - lo) / (hi - lo) * 255).rounded())))
        }
        let total = 2 * width + gap
        var pixels = [UInt8](repeating: 0, count: total * height)
        for row in 0..<height {
            for column in 0..<width {
                let v = indices[row * width + column]
                pixels[row * total + column] = grey(mr.voxels[v], lower, upper)
                pixels[row * total + width + gap + column] = grey(syntheticCT.voxels[v], ctWindow.lower, ctWindow.upper)
            }
        }
        return (pixels, total, height)
    }

    /// The image with `lines` of text in a band below it (the canvas widened to the longest line if needed).
    public static func annotate(_ pixels: [UInt8], width: Int, height: Int, lines: [String], scale: Int = 1)
        -> (pixels: [UInt8], width: Int, height: Int) {
        let margin = 2 * scale
        let textWidth = lines.map { BitmapFont.width(of: $0, scale: scale) }.max() ?? 0
        let total = max(width, textWidth + 2 * margin)
        let band = lines.count * BitmapFont.lineHeight * scale + 2 * margin
        var out = [UInt8](repeating: 0, count: total * (height + band))
        for row in 0..<height {
            for column in 0..<width { out[row * total + column] = pixels[row * width + column] }
        }
        for (n, line) in lines.enumerated() {
            BitmapFont.draw(line, x: margin, y: height + margin + n * BitmapFont.lineHeight * scale, scale: scale, value: 255,
                            into: &out, width: total, height: height + band, maxX: total)
        }
        return (out, total, height + band)
    }
}
