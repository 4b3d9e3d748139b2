import Foundation
import Testing
@testable import Conversion
import CycleGAN
import SyntheticCT
import MR2CTSupport
import NeuralNetwork
import NIfTI
import Preprocessing
import Safetensors
import TestSupport

/// The QA verdict: histograms and their distance, the input check against the bundled models, tissue bands.
struct QualityCheckTests {
    static var root: URL { TestSupport.packageRoot }
    static var bundled: URL { root.appendingPathComponent("SampleData/model/phantom_G_A.safetensors") }
    static var bundled2: URL { root.appendingPathComponent("SampleData/model/phantom_G_A_2.safetensors") }

    @Test func histogramsCountByHandAndTheDistanceIsTheL1DistanceOfTheCDFs() throws {
        // A 4 × 1 × 1 volume, identity-like map [−1, 1] → [−1, 1] (lower −1, upper 1, clipped).
        let map = IntensityMap(lower: -1, upper: 1, clipped: true)
        let voxels: [Float] = [-1, -0.99, 0.5, 1]
        var h = IntensityHistogram(voxels: voxels, mask: [true, true, true, false], rowLength: 4, map: map,
                                   normalization: .percentile(lower: 0.5, upper: 99.5))
        // Bins of width 2/64: −1 and −0.99 in bin 0, 0.5 in bin 48; the 1 is outside the mask.
        var expected = [Double](repeating: 0, count: 64)
        expected[0] = 2
        expected[48] = 1
        #expect(h.counts == expected)
        // Neighbour differences inside the mask: |−0.99 − (−1)| = 0.01 (bin 0), |0.5 + 0.99| = 1.49 (bin 47).
        var differences = [Double](repeating: 0, count: 64)
        differences[0] = 1
        differences[47] = 1
        #expect(h.differenceCounts == differences)
        // Rows end: with rows of 2 the pair (−0.99, 0.5) is not neighbours.
        let rows = IntensityHistogram(voxels: voxels, mask: [true, true, true, true], rowLength: 2, map: map,
                                      normalization: .percentile(lower: 0.5, upper: 99.5))
        #expect(rows.differenceCounts.reduce(0, +) == 2)

        // Distance: all mass in bin 0 against all in bin 63 is 63/64; a histogram against itself 0.
        var a = IntensityHistogram(normalization: .zScore), b = a
        a.counts[0] = 5
        b.counts[63] = 2
        a.differenceCounts[0] = 1
        b.differenceCounts[0] = 3
        #expect(abs(try #require(a.intensityDistance(to: b)) - 63.0 / 64) < 1e-12)
        #expect(a.textureDistance(to: b) == 0)
        #expect(a.intensityDistance(to: a) == 0)
        // Half the mass moved by 8 bins: 0.5 · 8 / 64.
        var c = a
        c.counts[8] = 5
        #expect(abs(try #require(a.intensityDistance(to: c)) - 0.5 * 8 / 64) < 1e-12)
        #expect(IntensityHistogram(normalization: .zScore).intensityDistance(to: a) == nil, "an empty histogram has no distance")
        #expect(a.intensityDistance(to: IntensityHistogram(normalization: .percentile(lower: 1, upper: 99))) == nil)
        // JSON round trip; malformed stored histograms are refused.
        h.add(h)
        #expect(IntensityHistogram(json: h.json) == h)
        #expect(IntensityHistogram(json: #"{"lower":-1,"upper":1,"counts":[1,2],"differenceCounts":[1]}"#) == nil)
        #expect(IntensityHistogram(json: #"{"lower":-1,"upper":1,"counts":[-1,2],"differenceCounts":[1,1]}"#) == nil)
        #expect(IntensityHistogram(json: "[]") == nil)
    }

    @Test func theBundledModelsStoreTheHistogramOfTheTrainingPhantomsAndUnchangedWeights() throws {
        // Recomputed from SampleData/phantoms/train/mr with the same code (`mr2ct histogram`).
        let files = try NIfTIFile.volumeFiles(in: Self.root.appendingPathComponent("SampleData/phantoms/train/mr"))
        for url in [Self.bundled, Self.bundled2] {
            let model = try SyntheticCTModel.load(url)
            let stored = try #require(model.trainingHistogram)
            let recomputed = try ModelHistogram.histogram(of: files, preprocessing: model.preprocessing)
            #expect(stored == recomputed)
            #expect(stored.total == 539_133)
        }
    }

    /// Uniform noise on the phantoms' grid (2 × 2 × 4 mm).
    static func noise() -> Volume {
        var random = SeededRandom(seed: 77)
        let grid = GridSize(64, 64, 32)
        let voxels = (0..<grid.count).map { _ in 1000 * random.nextUnitFloat() }
        return Volume(grid: grid, voxels: voxels, affine: Affine.scaling(SIMD3(2, 2, 4)))
    }

    /// The check of `mr` against the bundled model (the synthetic CT is irrelevant to the input check).
    static func check(_ mr: Volume) throws -> QualityCheck {
        let model = try SyntheticCTModel.load(bundled)
        let mask = BodyMask.compute(mr)
        let facts = QualityCheck.ModelFacts(name: "phantom_G_A.safetensors", preprocessing: model.preprocessing,
                                            histogram: model.trainingHistogram)
        return QualityCheck.assess(mr: mr, syntheticCT: mr, bodyMask: mask, covered: [Bool](repeating: true, count: mask.count),
                                   models: [facts], planes: nil)
    }

    @Test func heldOutPhantomsPassTheInputCheckAndACTOrUniformNoiseDoNot() throws {
        let heldout = Self.root.appendingPathComponent("SampleData/phantoms/heldout/mr")
        for url in try NIfTIFile.volumeFiles(in: heldout) {
            let qa = try Self.check(try NIfTIFile.read(url))
            #expect(qa.warnings.isEmpty, "\(url.lastPathComponent): \(qa.warnings.map(\.message))")
            #expect(try #require(qa.intensityDistance) < 0.05 && (try #require(qa.textureDistance)) < 0.02)
        }
        // numpy reference (Tests/TestSupport/Fixtures/conversion/histogram_reference.py, masks from mr2ct mask):
        // sub-101 intensity 0.032613 texture 0.008646; the CT 0.273075 / 0.075170. (Float32 against float64
        // normalisation moves a few voxels across bin edges: 1e-5.)
        let sub101 = try Self.check(try NIfTIFile.read(heldout.appendingPathComponent("sub-101.nii.gz")))
        #expect(abs(sub101.intensityDistance! - 0.032613) < 2e-5 && abs(sub101.textureDistance! - 0.008646) < 2e-5)
        let ct = try Self.check(try NIfTIFile.read(Self.root.appendingPathComponent("SampleData/real/example_ct_sm_3mm.nii.gz")))
        #expect(abs(ct.intensityDistance! - 0.273075) < 2e-5 && abs(ct.textureDistance! - 0.075170) < 2e-5)
        #expect(ct.warnings.map(\.code).contains("input_unlike_training"))
        let noise = try Self.check(Self.noise())
        #expect(noise.warnings.map(\.code) == ["input_unlike_training"], "\(noise.warnings.map(\.message))")
        #expect(try #require(noise.textureDistance) > 0.2)
    }

    @Test func modelsWithoutAHistogramGetNoInputCheck() throws {
        let model = try SyntheticCTModel.load(SyntheticCTModelTests.tinyModel)
        #expect(model.trainingHistogram == nil)
        let mr = Self.noise()
        let mask = BodyMask.compute(mr)
        let qa = QualityCheck.assess(mr: mr, syntheticCT: mr, bodyMask: mask, covered: [Bool](repeating: true, count: mask.count),
                                     models: [.init(name: "tiny", preprocessing: model.preprocessing, histogram: nil)], planes: nil)
        #expect(qa.intensityDistance == nil && qa.textureDistance == nil && qa.warnings.isEmpty)
        #expect(qa.json.contains(#""intensityDistance":null"#))
    }

    @Test func bandsSharesAndGeometryWarningsAreCountedByHand() throws {
        // Five body voxels: −900 (air), −100 (fat), 40 (soft), 700 (bone), 2500 (bone, dense); one outside.
        let grid = GridSize(6, 1, 1)
        let mr = Volume(grid: grid, voxels: [1, 2, 3, 4, 5, 0], affine: Affine.scaling(SIMD3(5, 0.9, 3)))
        let sct = Volume(grid: grid, voxels: [-900, -100, 40, 700, 2500, -1024], affine: mr.affine)
        var p = PreprocessingConfiguration()
        p.targetSpacing = 2
        let facts = QualityCheck.ModelFacts(name: "m", preprocessing: p, histogram: nil)
        let qa = QualityCheck.assess(mr: mr, syntheticCT: sct, bodyMask: [true, true, true, true, true, false],
                                     covered: [true, true, true, true, false, true], models: [facts], planes: [.axial, .coronal])
        #expect(qa.bodyVoxels == 5 && qa.bodyInsideField == 0.8)
        #expect(qa.bodyAir == 0.2 && qa.bodyDense == 0.2)
        #expect(qa.bands.map(\.fraction) == [0.2, 0.2, 0.2, 0.4])
        #expect(qa.bands.map(\.meanHU) == [-900, -100, 40, 1600])
        // Axial: in-plane spacings 5 and 0.9 mm against 2 mm (5 > 4); coronal: 5 and 3 (5 > 4); coronal untrained.
        #expect(qa.warnings == [.bodyOutsideField(share: 0.8),
                                .spacingOutsideRange(model: "m", plane: .axial, spacing: 5, targetSpacing: 2),
                                .planeNotTrained(model: "m", plane: .coronal, trainedPlane: .axial),
                                .spacingOutsideRange(model: "m", plane: .coronal, spacing: 5, targetSpacing: 2)])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(qa.json.utf8)) as? [String: Any])
        let warnings = try #require(object["warnings"] as? [[String: Any]])
        #expect(warnings.map { $0["code"] as? String } == ["body_outside_field", "spacing_outside_range", "plane_not_trained",
                                                            "spacing_outside_range"])
        let tissues = try #require(object["tissues"] as? [String: [String: Any]])
        #expect(Set(tissues.keys) == ["airLung", "fat", "softTissue", "bone"])
        #expect(tissues["bone"]?["meanHU"] as? Double == 1600)
    }
}
