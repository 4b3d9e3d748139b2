import Foundation
import Testing
import MR2CTSupport
import TestSupport
@testable import Safetensors

/// Hostile and malformed safetensors files (issue 9): each must give a one-line `"<path>: <reason>"` error with the
/// expected reason, never a trap, a hang or a huge allocation.
@Suite struct MalformedSafetensorsTests {
    /// Little-endian 8-byte length + header + data.
    static func file(header: String, data: [UInt8] = [], headerLength: UInt64? = nil) -> Data {
        let h = Array(header.utf8)
        var out = Data()
        withUnsafeBytes(of: (headerLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(contentsOf: data)
        return out
    }

    static func floats(_ n: Int) -> [UInt8] {
        (0 ..< n).flatMap { i in withUnsafeBytes(of: Float(i).bitPattern.littleEndian) { Array($0) } }
    }

    static let good = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#

    /// (label, bytes, a fragment the error's reason must contain). A function, not a stored global, so that
    /// LeakSanitizer runs of the suite stay clean.
    static func cases() -> [(String, Data, String)] { [
        ("empty", Data(), "too short"),
        ("five-bytes", Data([1, 2, 3, 4, 5]), "too short"),
        ("header-beyond-file", file(header: good, data: floats(3), headerLength: 500), "beyond the end of the file"),
        ("absurd-header-length", file(header: good, data: floats(3), headerLength: 1 << 62), "exceeds the 100000000-byte limit"),
        ("header-length-max", file(header: "{}", headerLength: .max), "exceeds"),
        ("zero-header", file(header: "", data: floats(1)), "too small"),
        ("not-json", file(header: "{\"a\": nope}"), "not valid JSON"),
        ("truncated-json", file(header: "{\"a\":{\"dtype\":\"F32\""), "not valid JSON"),
        ("not-an-object", file(header: "[1, 2, 3]"), "does not start with '{'"),
        ("trailing-garbage", file(header: "{} x"), "trailing characters"),
        ("invalid-utf8-key", file(header: "{\"?\":1}").replacingByte(at: 10, with: 0xFF), "UTF-8"),
        ("control-char-in-string", file(header: "{\"a\u{01}\":{}}"), "control character"),
        ("unpaired-surrogate", file(header: #"{"\ud800":{}}"#), "surrogate"),
        ("deep-nesting", file(header: "{\"a\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"), "nesting deeper"),
        ("duplicate-name", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: floats(2)), "duplicate key \"a\""),
        ("unknown-dtype", file(header: #"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: floats(1)), "unknown dtype \"F33\""),
        ("dtype-not-string", file(header: #"{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#, data: floats(1)), "dtype is a number"),
        ("missing-dtype", file(header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: floats(1)), "has no dtype"),
        ("missing-offsets", file(header: #"{"a":{"dtype":"F32","shape":[1]}}"#, data: floats(1)), "has no data_offsets"),
        ("negative-dim", file(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: floats(1)), "dimension -1 is not a non-negative integer"),
        ("fractional-dim", file(header: #"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, data: floats(1)), "dimension 1.5"),
        ("huge-dim", file(header: #"{"a":{"dtype":"F32","shape":[99999999999999999999999],"data_offsets":[0,4]}}"#, data: floats(1)), "not a non-negative integer"),
        ("overflowing-shape", file(header: #"{"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,4]}}"#, data: floats(1)), "more elements than the file has bytes"),
        ("shape-vs-bytes", file(header: #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#, data: floats(3)), "needs 16 bytes but data_offsets [0, 12] span 12"),
        ("wrong-dtype-size", file(header: #"{"a":{"dtype":"F64","shape":[3],"data_offsets":[0,12]}}"#, data: floats(3)), "needs 24 bytes"),
        ("offsets-out-of-range", file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: floats(3)), "outside the 12-byte data buffer"),
        ("offsets-reversed", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: floats(3)), "end before they begin"),
        ("offsets-not-pair", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: floats(1)), "not a pair"),
        ("overlap", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: floats(3)), "overlap"),
        ("hole", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: floats(3)), "hole in the data buffer"),
        ("trailing-bytes", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: floats(3)), "tensors cover 4"),
        ("truncated-data", file(header: good, data: floats(2)), "outside the 8-byte data buffer"),
        ("metadata-not-object", file(header: #"{"__metadata__":[1]}"#), "__metadata__ is an array"),
        ("metadata-value-number", file(header: #"{"__metadata__":{"generator":5}}"#), "entry \"generator\" is a number"),
        ("tensor-not-object", file(header: #"{"a":"F32"}"#), "tensor \"a\" is a string"),
    ] }

    @Test func everyMalformedFileGivesItsOneLineError() throws {
        let cases = Self.cases()
        #expect(cases.count >= 10)
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (label, bytes, fragment) in cases {
            let url = directory.appendingPathComponent("\(label).safetensors")
            try bytes.write(to: url)
            do {
                let archive = try SafetensorsFile.read(url)
                Issue.record("\(label): accepted (\(archive.names))")
            } catch let error as SafetensorsError {
                let text = error.description
                #expect(text.hasPrefix(url.path + ": "), "\(label): \(text)")
                #expect(!text.contains("\n"), "\(label): one line")
                #expect(text.contains(fragment), "\(label): \(text)")
            }
        }
    }

    @Test func missingAndNonRegularFilesAndNonFloatTensors() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("none.safetensors")
        #expect { try SafetensorsFile.read(missing) } throws: { ($0 as? SafetensorsError)?.description == "\(missing.path): no such file" }
        #expect { try SafetensorsFile.read(directory) } throws: { "\($0)".contains("is a folder, not a safetensors file") }
        let url = directory.appendingPathComponent("ok.safetensors")
        try Self.file(header: Self.good, data: Self.floats(3)).write(to: url)
        let archive = try SafetensorsFile.read(url)
        #expect(try archive.tensor(named: "a").values == [0, 1])
        #expect { try archive.tensor(named: "c") } throws: { "\($0)" == "\(url.path): no tensor named \"c\"" }
    }

    @Test func everyTruncationOfAValidFileIsRejected() throws {
        let valid = try SafetensorsFile.encode([("w", [3, 2], [1, 2, 3, 4, 5, 6]), ("b", [3], [7, 8, 9])], metadata: ["k": "v"])
        _ = try SafetensorsFile.parse(valid, path: "valid")
        for length in 0 ..< valid.count {
            #expect(throws: SafetensorsError.self, "truncated to \(length)") {
                try SafetensorsFile.parse(valid.prefix(length), path: "t")
            }
        }
    }

    /// A deterministic in-process mutation fuzz (the libFuzzer target runs the same entry point for longer):
    /// every mutant is accepted or rejected with a SafetensorsError, and an accepted one decodes.
    @Test func randomMutationsNeverTrap() throws {
        let valid = try SafetensorsFile.encode([("w", [3, 2], [1, 2, 3, 4, 5, 6]), ("b", [3], [7, 8, 9])], metadata: ["k": "v"])
        var random = SeededRandom(seed: 9)
        var accepted = 0
        for _ in 0 ..< 5000 {
            var bytes = valid
            for _ in 0 ... Int.random(in: 0 ..< 4, using: &random) {
                let i = Int.random(in: 0 ..< bytes.count, using: &random)
                bytes[bytes.startIndex + i] = UInt8.random(in: 0 ... 255, using: &random)
            }
            do {
                let archive = try SafetensorsFile.parse(bytes, path: "mutant")
                for name in archive.names where archive.info(named: name)!.dtype.isConvertibleToFloat {
                    _ = try archive.tensor(named: name)
                }
                accepted += 1
            } catch is SafetensorsError {}
        }
        #expect(accepted > 0, "some mutants (data bytes) stay valid")
    }
}

extension Data {
    func replacingByte(at index: Int, with byte: UInt8) -> Data {
        var copy = self
        copy[copy.startIndex + index] = byte
        return copy
    }
}

/// A file that is not a safetensors file is refused from its first bytes, without reading it all.
@Suite struct SafetensorsEarlyRefusalTests {
    @Test func aLargeNonSafetensorsFileIsRefusedFromItsHeader() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A plausible header declaring 8 bytes of data, in a sparse file of 1 TiB: refused from the header alone
        // ("tensors cover 8" of the data section); reading the file first would not end (or not fit in memory).
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#.padding(toLength: 60, withPad: " ", startingAt: 0)
        let url = directory.appendingPathComponent("huge.safetensors")
        try MalformedSafetensorsTests.file(header: header).write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 1 << 40)
        try handle.close()
        #expect { try SafetensorsFile.read(url) } throws: { "\($0)".contains("tensors cover 8") }
        // The same header made consistent (one tensor covering the whole TiB): refused as larger than memory.
        let consistent = #"{"a":{"dtype":"U8","shape":[1099511627708],"data_offsets":[0,1099511627708]}}"#
        let url2 = directory.appendingPathComponent("huge-valid.safetensors")
        try MalformedSafetensorsTests.file(header: consistent).write(to: url2)
        let handle2 = try FileHandle(forWritingTo: url2)
        try handle2.truncate(atOffset: 8 + UInt64(consistent.utf8.count) + 1_099_511_627_708)
        try handle2.close()
        #expect { try SafetensorsFile.read(url2) } throws: { "\($0)".contains("more than this machine's memory") }
        // A gzip'd NIfTI-like file (issue 16): named for what it is, not for its absurd "header length".
        let nifti = directory.appendingPathComponent("volume.nii.gz")
        try Data([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03] + [UInt8](repeating: 7, count: 1000)).write(to: nifti)
        #expect { try SafetensorsFile.read(nifti) } throws: { "\($0)".contains("gzip-compressed data (a .nii.gz volume?), not a safetensors file") }
    }
}

/// Issue 16: special files are refused by type before opening (a FIFO would block open(2) forever), and files
/// people hand over by mistake are named for what they are.
@Suite struct SafetensorsSpecialFileTests {
    @Test(arguments: SpecialFile.all)
    func specialFilesAreRefusedWithoutBlocking(_ special: SpecialFile) throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        try MalformedNIfTI.makeSpecial(special, at: url)
        let expected = special.expectedReason
        #expect { try SafetensorsFile.read(url) } throws: { "\($0)" == "\(url.path): " + ((($0 as? SafetensorsError)?.reason) ?? "") && "\($0)".contains(expected) }
    }

    @Test func aNIfTIOrAZipIsNamed() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var header = [UInt8](repeating: 0, count: 352)
        header[0] = 0x5C; header[1] = 0x01    // sizeof_hdr 348, little-endian
        let nii = directory.appendingPathComponent("volume.safetensors")
        try Data(header).write(to: nii)
        #expect { try SafetensorsFile.read(nii) } throws: { "\($0)".contains("a NIfTI volume, not a safetensors file") }
        let zip = directory.appendingPathComponent("latest_net_G_A.safetensors")
        try Data([0x50, 0x4B, 3, 4] + [UInt8](repeating: 0, count: 60)).write(to: zip)
        #expect { try SafetensorsFile.read(zip) } throws: { "\($0)".contains("a zip archive") }
        // A real header whose length happens to be 348 still parses: byte 8 is its '{'.
        let json = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let padded = json + String(repeating: " ", count: 348 - json.utf8.count)
        var file = Data()
        withUnsafeBytes(of: UInt64(348).littleEndian) { file.append(contentsOf: $0) }
        file += Data(padded.utf8) + Data([0, 0, 0x80, 0x3F])
        let valid = directory.appendingPathComponent("valid.safetensors")
        try file.write(to: valid)
        #expect(try SafetensorsFile.read(valid).tensor(named: "a").values == [1])
    }
}
