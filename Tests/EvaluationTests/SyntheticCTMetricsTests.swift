import Foundation
import Testing
import NIfTI
import TestSupport
@testable import Evaluation

/// MAE, ME, PSNR and SSIM against numbers computed by hand and against scikit-image running SynthRAD's procedure
/// (Fixtures/evaluation/make_fixture.py).
struct SyntheticCTMetricsTests {
    @Test func maeMeAndPSNRMatchHandComputedValues() throws {
        // The fourth voxel is outside the mask; the third is beyond the clip window in the reference.
        let reference: [Float] = [0, 100, -2000, 3500]
        let prediction: [Float] = [10, 80, -1024, 3000]
        let mask = [true, true, true, false]
        let d = try SyntheticCTEvaluation.differences(prediction: prediction, reference: reference, mask: mask)
        // sCT − CT = 10, −20, 976 (unclipped).
        #expect(abs(d.mae - 1006.0 / 3) < 1e-12)
        #expect(abs(d.me - 966.0 / 3) < 1e-12)
        #expect(d.count == 3)
        // Clipped: CT 0, 100, −1024; sCT 10, 80, −1024 → squared errors 100, 400, 0 → MSE 500/3.
        let psnr = try SyntheticCTEvaluation.peakSignalToNoiseRatio(prediction: prediction, reference: reference, mask: mask)
        #expect(abs(psnr - 10 * log10(4024.0 * 4024.0 / (500.0 / 3))) < 1e-12)
        #expect(abs(psnr - 49.87466) < 1e-4)
    }

    @Test func identicalImagesGiveInfinitePSNRAndUnitSSIM() throws {
        let grid = GridSize(8, 9, 7)
        let values = (0..<grid.count).map { Float(($0 * 7919) % 4000) - 1000 }
        let mask = [Bool](repeating: true, count: grid.count)
        let m = try SyntheticCTEvaluation.evaluate(prediction: values, reference: values, grid: grid, mask: mask)
        #expect(m.mae == 0)
        #expect(m.me == 0)
        #expect(m.psnr == .infinity)
        #expect(abs(m.ssim - 1) < 1e-12)
    }

    @Test func ssimOfTwoConstantImagesIsTheLuminanceTerm() throws {
        // 7×7×7: a single interior voxel. Constant images have zero variance, so SSIM = (2μxμy + C1)/(μx² + μy² + C1)
        // with the shifted values μx = 0 + 1024, μy = 100 + 1024 and C1 = (0.01·4024)².
        let grid = GridSize(7, 7, 7)
        let reference = [Float](repeating: 0, count: grid.count)
        let prediction = [Float](repeating: 100, count: grid.count)
        let mask = [Bool](repeating: true, count: grid.count)
        let ssim = try SyntheticCTEvaluation.structuralSimilarity(prediction: prediction, reference: reference,
                                                                  grid: grid, mask: mask)
        let c1 = 40.24 * 40.24
        let expected = (2 * 1024.0 * 1124 + c1) / (1024.0 * 1024 + 1124.0 * 1124 + c1)
        #expect(abs(ssim - expected) < 1e-12)
    }

    @Test func valuesOutsideTheMaskDoNotMatter() throws {
        let c = try FixtureCase("body")
        var altered = c.prediction
        for v in 0..<altered.count where !c.mask[v] { altered[v] = v % 2 == 0 ? 2500 : -3000 }
        let a = try SyntheticCTEvaluation.evaluate(prediction: c.prediction, reference: c.reference, grid: c.grid, mask: c.mask)
        let b = try SyntheticCTEvaluation.evaluate(prediction: altered, reference: c.reference, grid: c.grid, mask: c.mask)
        #expect(a == b)
    }

    @Test(arguments: ["body", "edge"])
    func metricsMatchScikitImageRunningSynthRADsProcedure(_ name: String) throws {
        let c = try FixtureCase(name)
        let m = try SyntheticCTEvaluation.evaluate(prediction: c.prediction, reference: c.reference, grid: c.grid,
                                                   mask: c.mask)
        let e = c.expected
        // SSIM: scipy's running-sum filters lose ~1e-9 to cancellation in E[x²] − E[x]²; hence 1e-8.
        #expect(m.voxels == e["voxels"] as? Int)
        #expect(abs(m.mae - (e["mae"] as! Double)) < 1e-9)
        #expect(abs(m.me - (e["me"] as! Double)) < 1e-9)
        #expect(abs(m.psnr - (e["psnr"] as! Double)) < 1e-9)
        #expect(abs(m.ssim - (e["ssim_uniform7"] as! Double)) < 1e-8)
        if let gaussian = e["ssim_gaussian1_5"] as? Double {
            let s = try SyntheticCTEvaluation.structuralSimilarity(prediction: c.prediction, reference: c.reference,
                                                                   grid: c.grid, mask: c.mask,
                                                                   window: .gaussian(sigma: 1.5))
            #expect(abs(s - gaussian) < 1e-8)
        }
    }

    @Test func volumesAreCheckedNotTrapped() throws {
        let grid = GridSize(8, 8, 8)
        let ones = [Float](repeating: 1, count: grid.count)
        let all = [Bool](repeating: true, count: grid.count)
        let none = [Bool](repeating: false, count: grid.count)
        #expect(throws: EvaluationError.self) {
            try SyntheticCTEvaluation.evaluate(prediction: ones, reference: ones, grid: grid, mask: none)
        }
        #expect(throws: EvaluationError.self) {
            try SyntheticCTEvaluation.evaluate(prediction: ones, reference: Array(ones.dropLast()), grid: grid, mask: all)
        }
        let small = GridSize(8, 8, 5)
        #expect(throws: EvaluationError.self) {
            try SyntheticCTEvaluation.structuralSimilarity(prediction: [Float](repeating: 0, count: small.count),
                                                           reference: [Float](repeating: 0, count: small.count),
                                                           grid: small, mask: [Bool](repeating: true, count: small.count))
        }
        let a = Volume(grid: grid, voxels: ones, affine: .identity)
        let b = Volume(grid: GridSize(8, 8, 9), voxels: [Float](repeating: 1, count: 8 * 8 * 9), affine: .identity)
        #expect(throws: EvaluationError.self) {
            try SyntheticCTEvaluation.evaluate(prediction: a, reference: b, mask: all)
        }
    }
}

/// One case of Fixtures/evaluation: raw little-endian float32 volumes, a byte mask and the expected metrics.
struct FixtureCase {
    var grid: GridSize
    var reference: [Float]
    var prediction: [Float]
    var mask: [Bool]
    var expected: [String: Any]

    init(_ name: String) throws {
        let folder = TestSupport.fixturesDirectory.appendingPathComponent("evaluation")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("expected.json")))
        let cases = try #require((json as? [String: Any])?["cases"] as? [String: Any])
        expected = try #require(cases[name] as? [String: Any])
        grid = GridSize(try #require(expected["nx"] as? Int), try #require(expected["ny"] as? Int),
                        try #require(expected["nz"] as? Int))
        func floats(_ file: String) throws -> [Float] {
            let data = try Data(contentsOf: folder.appendingPathComponent(file))
            return data.withUnsafeBytes { raw in
                (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
        }
        reference = try floats("\(name)_ref.f32")
        prediction = try floats("\(name)_pred.f32")
        mask = try Data(contentsOf: folder.appendingPathComponent("\(name)_mask.u8")).map { $0 != 0 }
        try #require(reference.count == grid.count && prediction.count == grid.count && mask.count == grid.count)
    }
}
