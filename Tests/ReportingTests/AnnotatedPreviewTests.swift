import Testing
@testable import Reporting

/// Issue 16: previews enlarged to ≥ 512 px on the long side by a whole factor, with a caption and a HU scale bar.
@Suite struct AnnotatedPreviewTests {
    @Test func enlargesByAWholeFactorWithCaptionAndScaleBar() {
        let width = 162, height = 96
        let pixels = (0..<(width * height)).map { UInt8(($0 % width) * 255 / (width - 1)) }
        let picture = AnnotatedPreview.render(pixels, width: width, height: height, minimumLongSide: 512, caption: "AXIAL SLICE 19/36",
                                              scaleBar: .init(lower: -1024, upper: 2000, unit: "HU", x: 82, width: 80))
        let k = 4   // ceil(512 / 162)
        #expect(AnnotatedPreview.factor(width: width, height: height, minimumLongSide: 512) == k)
        #expect(picture.width == width * k && picture.width >= 512)
        // Rows below the caption band are the source rows, each voxel a k × k square.
        let band = 3 * BitmapFont.lineHeight + 4 * 3
        for (x, y) in [(0, 0), (37, 20), (161, 95)] {
            for dy in 0..<k { for dx in 0..<k {
                #expect(picture.pixels[(band + y * k + dy) * picture.width + x * k + dx] == pixels[y * width + x])
            } }
        }
        // The caption is drawn (white ink in the band), the bar ramps 0 → 255 under the given columns.
        #expect(picture.pixels[0..<(band * picture.width)].contains(255))
        let barRow = band + height * k + 2 * 3 + 1
        let bar = (82 * k..<(162 * k)).map { picture.pixels[barRow * picture.width + $0] }
        #expect(bar.first == 0 && bar.last == 255 && zip(bar, bar.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(picture.pixels[barRow * picture.width + 10] == 0)
    }
}
