import Foundation
@testable import Preprocessing
import Testing
import TestSupport

@Suite struct ConfigurationTests {
    @Test func defaults() {
        let c = PreprocessingConfiguration()
        #expect(c.plane == .axial && c.contextSlices == 1 && c.sliceSize == 256 && c.targetSpacing == nil)
        #expect(c.ctWindow == [-1024, 3000] && c.mrNormalization == .percentile(lower: 0.5, upper: 99.5))
        #expect(c.minimumBodyFraction == 0.05)
        #expect(c.ctOutsideBody == .air && c.mrOutsideBody == .air)
    }

    /// New runs mask the CT and MR outside the body; a stored configuration keeps what it says, and one saved
    /// before the keys existed (old run folders' config.json, the bundled models' metadata) means .keep.
    @Test func outsideBodyKeysRoundTripAndOldConfigurationsKeep() throws {
        var c = PreprocessingConfiguration()
        c.ctOutsideBody = .keep
        let data = try JSONEncoder().encode(c)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["ctOutsideBody"] as? String == "keep" && json["mrOutsideBody"] as? String == "air")
        #expect(try JSONDecoder().decode(PreprocessingConfiguration.self, from: data) == c)
        let old = #"{"plane":"axial","contextSlices":1,"sliceSize":96,"targetSpacing":2,"ctWindow":[-1024,3000],"minimumBodyFraction":0.05}"#
        let decoded = try JSONDecoder().decode(PreprocessingConfiguration.self, from: Data(old.utf8))
        #expect(decoded.ctOutsideBody == .keep && decoded.mrOutsideBody == .keep && decoded.sliceSize == 96)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(PreprocessingConfiguration.self, from: Data(#"{"ctOutsideBody":"couch"}"#.utf8))
        }
    }

    /// The bundled models' "preprocessing" metadata (read straight from the safetensors header: 8-byte
    /// little-endian length, JSON with "__metadata__") has no outside-body keys and decodes to .keep, so
    /// converting with them is unchanged.
    @Test(arguments: ["phantom_G_A", "phantom_G_A_2"])
    func bundledModelsKeepTheirPreprocessing(model: String) throws {
        let url = TestSupport.packageRoot.appendingPathComponent("SampleData/model/\(model).safetensors")
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let lengthBytes = try #require(try handle.read(upToCount: 8))
        var length: UInt64 = 0
        for (n, b) in lengthBytes.enumerated() { length |= UInt64(b) << (8 * UInt64(n)) }
        #expect(length < 1 << 20)
        let header = try #require(try handle.read(upToCount: Int(length)))
        let object = try #require(try JSONSerialization.jsonObject(with: header) as? [String: Any])
        let metadata = try #require(object["__metadata__"] as? [String: String])
        let json = try #require(metadata["preprocessing"])
        #expect(!json.contains("OutsideBody"))
        let c = try JSONDecoder().decode(PreprocessingConfiguration.self, from: Data(json.utf8))
        #expect(c.ctOutsideBody == .keep && c.mrOutsideBody == .keep)
    }

    @Test func codableRoundTripAndDefaultsForMissingKeys() throws {
        var c = PreprocessingConfiguration()
        c.plane = .sagittal
        c.contextSlices = 5
        c.sliceSize = 128
        c.targetSpacing = 1.25
        c.ctWindow = [-1000, 3071]
        c.mrNormalization = .zScore
        c.minimumBodyFraction = 0.1
        let data = try JSONEncoder().encode(c)
        #expect(try JSONDecoder().decode(PreprocessingConfiguration.self, from: data) == c)
        let partial = try JSONDecoder().decode(PreprocessingConfiguration.self, from: Data(#"{"sliceSize": 64}"#.utf8))
        var expected = PreprocessingConfiguration()
        expected.sliceSize = 64
        // A configuration without the outside-body keys was trained on unmasked volumes: it decodes to .keep.
        expected.ctOutsideBody = .keep
        expected.mrOutsideBody = .keep
        #expect(partial == expected)
        let percentile = try JSONDecoder().decode(PreprocessingConfiguration.self,
            from: JSONEncoder().encode(PreprocessingConfiguration()))
        #expect(percentile.mrNormalization == .percentile(lower: 0.5, upper: 99.5))
    }

    @Test func validationRejectsBadValues() throws {
        try PreprocessingConfiguration().validate()
        var bad: [PreprocessingConfiguration] = []
        var c = PreprocessingConfiguration(); c.contextSlices = 2; bad.append(c)
        c = PreprocessingConfiguration(); c.sliceSize = 30; bad.append(c)
        c = PreprocessingConfiguration(); c.targetSpacing = 0; bad.append(c)
        c = PreprocessingConfiguration(); c.ctWindow = [3000, -1024]; bad.append(c)
        c = PreprocessingConfiguration(); c.ctWindow = [0]; bad.append(c)
        c = PreprocessingConfiguration(); c.mrNormalization = .percentile(lower: 50, upper: 20); bad.append(c)
        c = PreprocessingConfiguration(); c.minimumBodyFraction = 1.5; bad.append(c)
        for b in bad {
            #expect(throws: PreprocessingError.self) { try b.validate() }
            do { try b.validate() } catch { #expect(!"\(error)".contains("\n")) }
        }
    }
}
