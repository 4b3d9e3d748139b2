import Foundation
import Testing
import MR2CTSupport
import TestSupport
@testable import Safetensors

/// Reading files written by Python's `safetensors` (the reference implementation) and round trips of our writer.
@Suite struct SafetensorsFormatTests {
    static var fixtures: URL { TestSupport.fixturesDirectory.appendingPathComponent("safetensors") }

    struct Expected: Decodable {
        struct Tensor: Decodable { var shape: [Int]; var values: [Double]?; var dtype: String }
        var tensors: [String: Tensor]
        var metadata: [String: String]
    }

    @Test func readsEveryFloatDTypeWrittenByPython() throws {
        let archive = try SafetensorsFile.read(Self.fixtures.appendingPathComponent("dtypes.safetensors"))
        let expected = try JSONDecoder().decode(
            Expected.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("expected.json")))
        #expect(archive.metadata == expected.metadata)
        #expect(Set(archive.names) == Set(expected.tensors.keys))
        for (name, reference) in expected.tensors {
            let info = try #require(archive.info(named: name))
            #expect(info.dtype.rawValue == reference.dtype, "\(name)")
            #expect(info.shape == reference.shape, "\(name)")
            guard let values = reference.values else {
                // Integer tensors are not converted to Float: a clear error, the bytes still available.
                #expect(throws: SafetensorsError.self) { try archive.tensor(named: name) }
                #expect(try archive.rawBytes(named: name).count == info.elementCount * 8)
                continue
            }
            let decoded = try archive.tensor(named: name)
            #expect(decoded.shape == reference.shape)
            // PyTorch's float32 conversion of the stored element; both sides are exact or round-to-nearest: bit equal.
            #expect(decoded.values.map(\.bitPattern) == values.map { Float($0).bitPattern }, "\(name)")
        }
    }

    @Test func roundTripKeepsNamesShapesBitsAndMetadata() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("round.safetensors")
        let special: [Float] = [0, -0.0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1 / 3]
        let tensors: [(name: String, shape: [Int], values: [Float])] = [
            ("model.1.weight", [2, 1, 2, 2], special),
            ("model.1.bias", [2], [0.5, -0.25]),
            ("scalar", [], [42]),
            ("empty", [0, 4], []),
            ("ünïcode \"name\"\n", [1], [7]),
        ]
        let metadata = ["generator": "{\"ngf\":8}", "direction": "MR->CT", "quote\"and\\": "é✓\u{1}"]
        try SafetensorsFile.write(tensors, metadata: metadata, to: url)
        let bytes = try Data(contentsOf: url)
        let headerLength = bytes.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        #expect((8 + headerLength) % 8 == 0, "data section aligned to 8 bytes")

        let archive = try SafetensorsFile.read(url)
        #expect(archive.metadata == metadata)
        #expect(archive.names == tensors.map(\.name), "written in the order given")
        for t in tensors {
            let read = try archive.tensor(named: t.name)
            #expect(read.shape == t.shape)
            #expect(read.values.map(\.bitPattern) == t.values.map(\.bitPattern))
        }
        // copyFloats checks the destination size.
        var buffer = [Float](repeating: 0, count: 3)
        #expect(throws: SafetensorsError.self) {
            try buffer.withUnsafeMutableBufferPointer { try archive.copyFloats(named: "model.1.bias", into: $0) }
        }
    }

    @Test func writerRefusesInconsistentTensorsAndLeavesNoFile() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("bad.safetensors")
        #expect(throws: SafetensorsError.self) {
            try SafetensorsFile.write([("a", [2], [1, 2]), ("a", [1], [3])], metadata: [:], to: url)
        }
        #expect(throws: SafetensorsError.self) { try SafetensorsFile.write([("a", [2, 2], [1, 2])], metadata: [:], to: url) }
        #expect(throws: SafetensorsError.self) { try SafetensorsFile.write([("__metadata__", [1], [1])], metadata: [:], to: url) }
        #expect(throws: SafetensorsError.self) { try SafetensorsFile.write([("a", [-1], [])], metadata: [:], to: url) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test func halfPrecisionConversionIsExactForAllBitPatterns() {
        // Every finite half is exactly representable as a float: compare with an independent computation.
        for bits in 0 ... UInt16.max {
            let sign: Double = bits & 0x8000 != 0 ? -1 : 1
            let exponent = Int((bits >> 10) & 0x1F), mantissa = Double(bits & 0x3FF)
            let converted = halfToFloat(bits)
            if exponent == 0x1F {
                if mantissa == 0 { #expect(converted == Float(sign) * .infinity) } else { #expect(converted.isNaN) }
                continue
            }
            let reference = exponent == 0 ? sign * mantissa * 0x1p-24 : sign * (1 + mantissa / 1024) * pow(2, Double(exponent - 15))
            if converted != Float(reference) || converted.sign != Float(reference).sign {
                Issue.record("half 0x\(String(bits, radix: 16)): \(converted) != \(reference)")
                return
            }
        }
    }
}
