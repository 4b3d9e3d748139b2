import CPNG
import Foundation
import MR2CTSupport

/// An error while encoding, writing or reading a PNG file: `"<path>: <reason>"` on one line.
public struct PNGError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
}

/// 8-bit pixels as read from a PNG: `channels` is 1 (gray) or 3 (RGB), rows top to bottom, no padding.
public struct PNGPixels: Sendable, Hashable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// PNG files through Debian's libpng, with its "simplified API" (png.h, `png_image_*`, libpng ≥ 1.6): those
/// functions catch libpng's errors internally (they run the codec under their own setjmp and return 0 with a
/// message), so no longjmp can cross a Swift frame. Files are written atomically.
public enum PNGImage {
    /// Writes an 8-bit grayscale image, `pixels` row-major with rows top to bottom (`width·height` bytes).
    public static func writeGray8(_ pixels: [UInt8], width: Int, height: Int, to url: URL) throws {
        let data = try encode(pixels, width: width, height: height, channels: 1, path: url.path)
        try AtomicFile.write(data, to: url)
    }

    /// Writes an 8-bit RGB image, `pixels` interleaved R, G, B, row-major, rows top to bottom (`3·width·height`).
    public static func writeRGB8(_ pixels: [UInt8], width: Int, height: Int, to url: URL) throws {
        let data = try encode(pixels, width: width, height: height, channels: 3, path: url.path)
        try AtomicFile.write(data, to: url)
    }

    /// The PNG file bytes of an 8-bit image with 1 (gray) or 3 (RGB) interleaved channels.
    /// `path` only names the image in errors.
    public static func encode(_ pixels: [UInt8], width: Int, height: Int, channels: Int,
                              path: String = "<png>") throws -> Data {
        guard channels == 1 || channels == 3 else {
            throw PNGError(path: path, reason: "\(channels) channels (PNG writing supports 1 or 3)")
        }
        guard width > 0, height > 0, width <= 1 << 20, height <= 1 << 20 else {
            throw PNGError(path: path, reason: "invalid image size \(width)×\(height)")
        }
        guard pixels.count == width * height * channels else {
            throw PNGError(path: path, reason: "\(pixels.count) bytes for a \(width)×\(height)×\(channels) image")
        }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = channels == 1 ? grayFormat : rgbFormat
        let stride = png_int_32(width * channels)
        // First pass: the size of the encoded file; second: the encoding.
        var size = 0
        let sized = pixels.withUnsafeBytes { raw in
            png_image_write_to_memory(&image, nil, &size, 0, raw.baseAddress, stride, nil)
        }
        guard sized != 0, size > 0 else {
            let reason = message(of: &image)
            png_image_free(&image)
            throw PNGError(path: path, reason: "libpng: \(reason)")
        }
        var data = Data(count: size)
        let written = data.withUnsafeMutableBytes { out in
            pixels.withUnsafeBytes { raw in
                png_image_write_to_memory(&image, out.baseAddress, &size, 0, raw.baseAddress, stride, nil)
            }
        }
        guard written != 0 else {
            let reason = message(of: &image)
            png_image_free(&image)
            throw PNGError(path: path, reason: "libpng: \(reason)")
        }
        png_image_free(&image)
        data.count = size
        return data
    }

    /// Reads a PNG file as 8-bit gray (1 channel) when it has no colour, else as 8-bit RGB (3 channels).
    /// Alpha is composited onto black; 16-bit samples are reduced to 8 bits (libpng's simplified read).
    public static func read(_ url: URL) throws -> PNGPixels {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, url.path) != 0 else {
            let reason = message(of: &image)
            png_image_free(&image)
            throw PNGError(path: url.path, reason: reason)
        }
        let color = image.format & rgbFormat != 0
        let channels = color ? 3 : 1
        image.format = color ? rgbFormat : grayFormat
        let width = Int(image.width), height = Int(image.height)
        guard width > 0, height > 0, width * height <= 1 << 28 else {
            png_image_free(&image)
            throw PNGError(path: url.path, reason: "unsupported image size \(width)×\(height)")
        }
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        var black = png_color(red: 0, green: 0, blue: 0)
        let ok = pixels.withUnsafeMutableBytes { out in
            png_image_finish_read(&image, &black, out.baseAddress, png_int_32(width * channels), nil)
        }
        guard ok != 0 else {
            let reason = message(of: &image)
            png_image_free(&image)
            throw PNGError(path: url.path, reason: reason)
        }
        png_image_free(&image)
        return PNGPixels(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// PNG_FORMAT_GRAY (0) and PNG_FORMAT_RGB (PNG_FORMAT_FLAG_COLOR, 0x02) of png.h.
    private static let grayFormat = png_uint_32(0)
    private static let rgbFormat = png_uint_32(0x02)

    /// libpng's message buffer (a fixed `char[64]`) as a String.
    private static func message(of image: inout png_image) -> String {
        let text = withUnsafeBytes(of: &image.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "not a readable PNG file" : text
    }
}
