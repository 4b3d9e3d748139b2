import Foundation
import Testing
import TestSupport
@testable import Reporting

@Test func grayPNGRoundTripsThroughLibpng() throws {
    let dir = try TestSupport.makeTemporaryDirectory("png")
    defer { try? FileManager.default.removeItem(at: dir) }
    let width = 37, height = 19   // odd sizes: no row padding may leak in
    let pixels = (0..<(width * height)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 / width) }
    let url = dir.appendingPathComponent("gray.png")
    try PNGImage.writeGray8(pixels, width: width, height: height, to: url)
    let read = try PNGImage.read(url)
    #expect(read.width == width && read.height == height && read.channels == 1)
    #expect(read.pixels == pixels)
    // The file is a real PNG: the 8-byte signature and an IHDR chunk with our size, bit depth 8, colour type 0.
    let bytes = [UInt8](try Data(contentsOf: url))
    #expect(Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    #expect(String(decoding: bytes[12..<16], as: UTF8.self) == "IHDR")
    #expect(Int(bytes[16]) << 24 | Int(bytes[17]) << 16 | Int(bytes[18]) << 8 | Int(bytes[19]) == width)
    #expect(Int(bytes[20]) << 24 | Int(bytes[21]) << 16 | Int(bytes[22]) << 8 | Int(bytes[23]) == height)
    #expect(bytes[24] == 8 && bytes[25] == 0)
    // No temporary file is left beside it.
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["gray.png"])
}

@Test func rgbPNGRoundTripsThroughLibpng() throws {
    let dir = try TestSupport.makeTemporaryDirectory("png")
    defer { try? FileManager.default.removeItem(at: dir) }
    let width = 5, height = 3
    var pixels: [UInt8] = []
    for i in 0..<(width * height) { pixels += [UInt8(i * 10), UInt8(255 - i), UInt8(i % 2 * 200)] }
    let url = dir.appendingPathComponent("rgb.png")
    try PNGImage.writeRGB8(pixels, width: width, height: height, to: url)
    let read = try PNGImage.read(url)
    #expect(read.channels == 3 && read.width == width && read.height == height)
    #expect(read.pixels == pixels)
}

@Test func pngErrorsAreThrownWithThePathNotTrapped() throws {
    let dir = try TestSupport.makeTemporaryDirectory("png")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("bad.png")
    #expect(throws: PNGError.self) { try PNGImage.writeGray8([1, 2, 3], width: 2, height: 2, to: url) }
    #expect(throws: PNGError.self) { try PNGImage.writeGray8([], width: 0, height: 0, to: url) }
    #expect(!FileManager.default.fileExists(atPath: url.path))
    // Reading garbage and a truncated PNG: libpng's own errors come back as thrown errors naming the file.
    let garbage = dir.appendingPathComponent("garbage.png")
    try Data("not a png at all, just text".utf8).write(to: garbage)
    let error = try #require(throws: PNGError.self) { try PNGImage.read(garbage) }
    #expect(error.description.hasPrefix(garbage.path + ": "))
    #expect(!error.description.contains("\n"))
    let good = dir.appendingPathComponent("good.png")
    try PNGImage.writeGray8([UInt8](repeating: 9, count: 64 * 64), width: 64, height: 64, to: good)
    let truncated = dir.appendingPathComponent("truncated.png")
    try Data(try Data(contentsOf: good).prefix(60)).write(to: truncated)
    #expect(throws: PNGError.self) { try PNGImage.read(truncated) }
    #expect(throws: PNGError.self) { try PNGImage.read(dir.appendingPathComponent("missing.png")) }
    // Writing into a folder that does not exist fails cleanly.
    #expect(throws: (any Error).self) {
        try PNGImage.writeGray8([0], width: 1, height: 1, to: dir.appendingPathComponent("no/such/dir/x.png"))
    }
}

@Test func windowsMapValuesToGrayLevels() {
    let ct = IntensityWindow(width: 1500, level: 300)
    #expect(ct.lower == -450 && ct.upper == 1050)
    #expect(ct.grayLevel(-1000) == 0)
    #expect(ct.grayLevel(2000) == 255)
    #expect(ct.grayLevel(300) == 128)              // (750/1500)·255 = 127.5 → 128
    #expect(ct.grayLevel(.nan) == 0)
    // The HU window on images mapped from [-1024, 3000] to [-1, 1].
    let n = IntensityWindow(lower: -1024, upper: 3000).normalized(from: -1024...3000)
    #expect(n.lower == -1 && n.upper == 1)
    let bone = ct.normalized(from: -1024...3000)
    #expect(abs(bone.lower - (2 * (574.0 / 4024.0) - 1)) < 1e-6)
}

@Test func imageGridPlacesWindowedTilesAndLabels() throws {
    // Row 1: a 4×3 ramp in [-1, 1] and a 2×2 CT patch in HU; row 2: one 4×2 image. Spacing 1, scale 2.
    let ramp = GridImage(width: 4, height: 3, pixels: (0..<12).map { Float($0) / 11 * 2 - 1 }, window: .normalized)
    let ct = GridImage(width: 2, height: 2, pixels: [-1000, 0, 1050, 3000], window: .ctHeadBone)
    let flat = GridImage(width: 4, height: 2, pixels: [Float](repeating: 0, count: 8), window: .normalized)
    let grid = ImageGrid(rows: [[ramp, ct], [flat]], scale: 2, spacing: 1, background: 7)
    let out = try grid.render()
    // Widths: 1 + 8 + 1 + 4 + 1 = 15; heights: 1 + 6 + 1 + 4 + 1 = 13.
    #expect(out.width == 15 && out.height == 13 && out.channels == 1)
    func at(_ x: Int, _ y: Int) -> UInt8 { out.pixels[y * out.width + x] }
    #expect(at(0, 0) == 7)
    #expect(at(1, 1) == 0)                    // ramp value -1
    #expect(at(2, 2) == 0)                    // nearest-neighbour ×2
    #expect(at(8, 6) == 255)                  // ramp value +1 at (3, 2)
    #expect(at(3, 1) == IntensityWindow.normalized.grayLevel(Float(1) / 11 * 2 - 1))
    // The CT tile is 4×4 in a column 4 wide, centred vertically in a row 6 tall: origin (10, 2).
    #expect(at(10, 2) == 0 && at(12, 2) == IntensityWindow.ctHeadBone.grayLevel(0))
    #expect(at(10, 4) == 255 && at(13, 5) == 255)
    #expect(at(10, 1) == 7 && at(10, 6) == 7)
    // Row 2 starts at y = 8.
    #expect(at(1, 8) == 128 && at(8, 11) == 128 && at(9, 8) == 7)

    // Labels add a band above the row and draw ink in it; images keep their values.
    var labelled = grid
    labelled.rows[0][0].label = "MR"
    let withLabels = try labelled.render()
    #expect(withLabels.height == out.height + BitmapFont.lineHeight + 2)
    let band = (1..<(1 + BitmapFont.lineHeight)).flatMap { y in (0..<withLabels.width).map { withLabels.pixels[y * withLabels.width + $0] } }
    #expect(band.contains(255))

    // Inconsistent sizes are errors, not traps.
    let broken = ImageGrid(rows: [[GridImage(width: 3, height: 3, pixels: [0], window: .normalized)]])
    #expect(throws: ImageGrid.LayoutError.self) { try broken.render() }
    #expect(throws: ImageGrid.LayoutError.self) { try ImageGrid(rows: []).render() }
}

@Test func imageGridWritesAReadablePNG() throws {
    let dir = try TestSupport.makeTemporaryDirectory("grid")
    defer { try? FileManager.default.removeItem(at: dir) }
    let n = 32
    let disc = (0..<(n * n)).map { i -> Float in
        let x = Float(i % n) - 15.5, y = Float(i / n) - 15.5
        return x * x + y * y < 144 ? 1 : -1
    }
    let tile = GridImage(width: n, height: n, pixels: disc, window: .normalized, label: "real MR")
    let grid = ImageGrid(rows: [[tile, tile], [tile]], scale: 2)
    let url = dir.appendingPathComponent("grid.png")
    try grid.write(to: url)
    let read = try PNGImage.read(url)
    #expect(read == (try grid.render()))
}

@Test func flippingAnImageReversesItsRows() {
    let image = GridImage(width: 2, height: 3, pixels: [1, 2, 3, 4, 5, 6], window: .normalized)
    #expect(image.flippedVertically().pixels == [5, 6, 3, 4, 1, 2])
}
