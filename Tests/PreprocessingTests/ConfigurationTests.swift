import Foundation
@testable import Preprocessing
import Testing

@Suite struct ConfigurationTests {
    @Test func defaults() {
        let c = PreprocessingConfiguration()
        #expect(c.plane == .axial && c.contextSlices == 1 && c.sliceSize == 256 && c.targetSpacing == nil)
        #expect(c.ctWindow == [-1024, 3000] && c.mrNormalization == .percentile(lower: 0.5, upper: 99.5))
        #expect(c.minimumBodyFraction == 0.05)
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
