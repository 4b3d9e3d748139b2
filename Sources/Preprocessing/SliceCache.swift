import Foundation
import MR2CTSupport

/// The prepared slices of one volume on disk: every slice of the plane at the network's size (single channel,
/// normalised), quantised to Int16 with a per-volume linear code (value = offset + scale · (code + 32768),
/// error ≤ range / 131070: 0.03 HU for the CT window), plus each slice's body fraction. Read by mmap(2), so a
/// folder of hundreds of volumes costs address space, not memory. File layout (native byte order):
///
///     "MR2CTSLC" | version u32 | key length u32 | slice count i64 | size i64 | scale f64 | offset f64 |
///     key bytes (padded to 8) | body fractions f64 × count | padding to 64 | codes i16 × count × size²
final class SliceCacheFile: @unchecked Sendable {
    static let magic = Array("MR2CTSLC".utf8)
    static let version: UInt32 = 1

    let url: URL
    let sliceCount: Int
    let size: Int
    let scale: Double
    let offset: Double
    let bodyFractions: [Double]
    private let mapping: UnsafeRawPointer
    private let mappedLength: Int
    private let codes: UnsafePointer<Int16>

    /// Maps an existing cache file; nil when it is missing, truncated, of another version, or made for another
    /// key (other input file, configuration or modality).
    init?(url: URL, key: String) {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= 48 else { return nil }
        let length = Int(st.st_size)
        guard let p = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), p != UnsafeMutableRawPointer(bitPattern: -1) else { return nil }
        let raw = UnsafeRawPointer(p)
        func unmap() { munmap(p, length) }
        guard (0..<8).allSatisfy({ raw.load(fromByteOffset: $0, as: UInt8.self) == Self.magic[$0] }),
              raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self) == Self.version else { unmap(); return nil }
        let keyLength = Int(raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let count = Int(raw.loadUnaligned(fromByteOffset: 16, as: Int64.self))
        let size = Int(raw.loadUnaligned(fromByteOffset: 24, as: Int64.self))
        guard count > 0, count < 1 << 20, size > 0, size <= 4096, keyLength < 1 << 16 else { unmap(); return nil }
        let layout = Self.layout(keyLength: keyLength, count: count, size: size)
        guard layout.total == length else { unmap(); return nil }
        let storedKey = String(decoding: UnsafeRawBufferPointer(start: raw + 48, count: keyLength), as: UTF8.self)
        guard storedKey == key else { unmap(); return nil }
        self.url = url
        self.sliceCount = count
        self.size = size
        self.scale = raw.loadUnaligned(fromByteOffset: 32, as: Double.self)
        self.offset = raw.loadUnaligned(fromByteOffset: 40, as: Double.self)
        self.bodyFractions = (0..<count).map { raw.loadUnaligned(fromByteOffset: layout.fractions + 8 * $0, as: Double.self) }
        self.mapping = raw
        self.mappedLength = length
        self.codes = (raw + layout.codes).assumingMemoryBound(to: Int16.self)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: mapping), mappedLength) }

    static func layout(keyLength: Int, count: Int, size: Int) -> (fractions: Int, codes: Int, total: Int) {
        let fractions = 48 + (keyLength + 7) / 8 * 8
        let codes = (fractions + 8 * count + 63) / 64 * 64
        return (fractions, codes, codes + 2 * count * size * size)
    }

    /// Writes the cache file for `prepared` atomically.
    static func write(_ prepared: PreparedVolume, key: String, to url: URL) throws {
        let count = prepared.sliceCount, size = prepared.sliceSize, plane = size * size
        var values = [Float](repeating: 0, count: count * plane)
        for s in 0..<count {
            let slice = prepared.processedSlice(s)
            values.replaceSubrange((s * plane)..<((s + 1) * plane), with: slice)
        }
        let lo = Double(values.min() ?? 0), hi = Double(values.max() ?? 0)
        let scale = hi > lo ? (hi - lo) / 65535 : 1
        let keyBytes = Array(key.utf8)
        let layout = layout(keyLength: keyBytes.count, count: count, size: size)
        var data = Data(count: layout.total)
        data.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) in
            for (i, b) in magic.enumerated() { raw[i] = b }
            raw.storeBytes(of: version, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: UInt32(keyBytes.count), toByteOffset: 12, as: UInt32.self)
            raw.storeBytes(of: Int64(count), toByteOffset: 16, as: Int64.self)
            raw.storeBytes(of: Int64(size), toByteOffset: 24, as: Int64.self)
            raw.storeBytes(of: scale, toByteOffset: 32, as: Double.self)
            raw.storeBytes(of: lo, toByteOffset: 40, as: Double.self)
            for (i, b) in keyBytes.enumerated() { raw[48 + i] = b }
            for s in 0..<count {
                raw.storeBytes(of: prepared.bodyFraction(ofSlice: s), toByteOffset: layout.fractions + 8 * s, as: Double.self)
            }
            let codes = (raw.baseAddress! + layout.codes).assumingMemoryBound(to: Int16.self)
            let inverse = 1 / scale
            values.withUnsafeBufferPointer { v in
                for i in 0..<v.count {
                    let q = ((Double(v[i]) - lo) * inverse).rounded() - 32768
                    codes[i] = Int16(min(max(q, -32768), 32767))
                }
            }
        }
        try AtomicFile.write(data, to: url)
    }

    /// Dequantises the `crop` window (crop.size² values) of slice `index` (clamped to the volume), taken from
    /// the slice mirrored left–right when `flip`, into `output`.
    func read(slice index: Int, into output: UnsafeMutableBufferPointer<Float>, flip: Bool, crop: SliceCrop) {
        precondition(crop.row >= 0 && crop.column >= 0 && crop.row + crop.size <= size && crop.column + crop.size <= size
                     && output.count == crop.size * crop.size)
        let s = min(max(index, 0), sliceCount - 1)
        let base = codes + s * size * size
        let scale = Float(self.scale), offset = Float(self.offset + 32768 * self.scale)
        let n = crop.size
        for r in 0..<n {
            let row = base + (crop.row + r) * size, o = r * n
            if flip {
                // Column c of the mirrored slice is column size − 1 − c of the stored one.
                let last = size - 1 - crop.column
                for c in 0..<n { output[o + c] = offset + scale * Float(row[last - c]) }
            } else {
                let first = row + crop.column
                for c in 0..<n { output[o + c] = offset + scale * Float(first[c]) }
            }
        }
    }
}

/// A square window of a slice: its top-left pixel and its side.
struct SliceCrop: Hashable, Sendable {
    var row: Int, column: Int, size: Int
}
