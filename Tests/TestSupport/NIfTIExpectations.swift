import Foundation

/// What nibabel reported about a fixture or real volume (Tests/TestSupport/Fixtures/nifti/expected.json, written by
/// make_fixtures.py beside it).
public struct NibabelExpectation: Decodable, Sendable {
    public struct Probe: Decodable, Sendable { public var ijk: [Int]; public var value: Double }
    public struct VolumeStats: Decodable, Sendable {
        public var min: Double, max: Double, mean: Double, first: Double, last: Double
    }
    public var shape: [Int]
    public var affine: [[Double]]
    public var zooms: [Double]
    public var pixdim: [Double]?
    public var datatype: String
    public var orientation: String
    public var scl_slope: Double
    public var scl_inter: Double
    public var qform_code: Int
    public var sform_code: Int
    public var version: Int
    public var min: Double?
    public var max: Double?
    public var mean: Double?
    public var probes: [Probe]?
    public var volumes: [VolumeStats]?

    /// nibabel's affine for files without qform/sform codes is ANALYZE-style (x flipped, origin centred); NIfTI-1
    /// method 1, which nifti_clib and MR2CT follow, is diag(pixdim[1…3]) with no offset.
    public var hasNoCodes: Bool { qform_code == 0 && sform_code == 0 }
}

public struct NibabelExpectations: Decodable, Sendable {
    public var fixtures: [String: NibabelExpectation]
    public var real: [String: NibabelExpectation]
}

extension TestSupport {
    /// The NIfTI fixtures folder.
    public static var niftiFixturesDirectory: URL { fixturesDirectory.appendingPathComponent("nifti") }

    /// The three real volumes (SampleData/real).
    public static var realVolumesDirectory: URL { packageRoot.appendingPathComponent("SampleData/real") }

    /// expected.json, decoded.
    public static func nibabelExpectations() throws -> NibabelExpectations {
        let data = try Data(contentsOf: niftiFixturesDirectory.appendingPathComponent("expected.json"))
        return try JSONDecoder().decode(NibabelExpectations.self, from: data)
    }
}
