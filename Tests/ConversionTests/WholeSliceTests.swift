import Foundation
import Testing
@testable import Conversion
import CycleGAN
import SyntheticCT
import NeuralNetwork
import Networks
import NIfTI
import Preprocessing
import TestSupport

/// Conversion on whole slices: a body larger than the training field is predicted everywhere, exactly as the
/// generator predicts the whole padded slice.
struct WholeSliceTests {
    /// A head of 78 × 70 voxels in plane (1 mm, RAS), far larger than the 32-pixel training field.
    static func largeHead() -> Volume {
        TrainingVolumes.head(ct: false, grid: GridSize(78, 70, 4), scale: 1.15, seed: 31)
    }

    static func translator(size: Int = 32, spacing: Double? = nil) -> VolumeTranslator {
        var p = PreprocessingConfiguration()
        p.sliceSize = size
        p.targetSpacing = spacing
        return VolumeTranslator(generator: VolumeTranslatorTests.tinyGenerator(seed: 17), preprocessing: p)
    }

    @Test func everyBodyVoxelOfABodyLargerThanTheTrainingFieldIsPredictedAsTheGeneratorPredictsTheWholePaddedSlice() throws {
        let mr = Self.largeHead()
        let translator = Self.translator()
        let mask = BodyMask.compute(mr)
        let sct = try translator.translate(mr)
        // The body reaches far beyond the centred 32 × 32 field the crop kept.
        var outsideOldField = 0
        for k in 0..<mr.grid.nz { for j in 0..<mr.grid.ny { for i in 0..<mr.grid.nx where mask[mr.grid.index(i, j, k)] {
            if abs(Double(i) - 38.5) > 16 || abs(Double(j) - 34.5) > 16 { outsideOldField += 1 }
        } } }
        #expect(Double(outsideOldField) > 0.5 * Double(mask.filter { $0 }.count))
        for v in 0..<mask.count where mask[v] {
            #expect(sct.voxels[v].isFinite && sct.voxels[v] > -1024, "voxel \(v) is \(sct.voxels[v])")
            if !(sct.voxels[v].isFinite && sct.voxels[v] > -1024) { break }
        }

        // By hand: each axial slice normalised with the MR's map, padded centred with the MR background to
        // 80 × 72 (the next multiples of 4; 1 column and 1 row before), rows from anterior (j high) down.
        let map = IntensityMap.mr(mr.voxels, mask: mask, normalization: translator.preprocessing.mrNormalization)
        let background = map.normalize(mr.voxels.min()!)
        let (w, h) = (80, 72)
        var worst: Float = 0
        for k in 0..<mr.grid.nz {
            let input = Tensor(shape: [1, 1, h, w])
            for p in 0..<(w * h) { input.data[p] = background }
            for r in 0..<mr.grid.ny {
                for c in 0..<mr.grid.nx {
                    // Outside the body mask the MR is its background (minimum) when the model masks it (new runs).
                    let v = mr.grid.index(c, mr.grid.ny - 1 - r, k)
                    let value = mask[v] || translator.preprocessing.mrOutsideBody == .keep ? mr.voxels[v] : mr.voxels.min()!
                    input.data[(r + 1) * w + c + 1] = map.normalize(value)
                }
            }
            let output = translator.generator.infer(input)
            for r in 0..<mr.grid.ny {
                for c in 0..<mr.grid.nx {
                    let v = mr.grid.index(c, mr.grid.ny - 1 - r, k)
                    guard mask[v] else { continue }
                    let expected = -1024 + (output.data[(r + 1) * w + c + 1] + 1) / 2 * 4024
                    worst = max(worst, abs(sct.voxels[v] - expected))
                }
            }
        }
        #expect(worst < 0.05, "whole-slice translation vs the generator on the padded slice: \(worst) HU")
    }

    @Test func theWholeSliceFieldCoversEverySourcePixelAndTheTrainingFieldDoesNot() throws {
        let mr = Self.largeHead()
        var configuration = PreprocessingConfiguration()
        configuration.sliceSize = 32
        for spacing in [nil, 2.0, 0.7] as [Double?] {
            configuration.targetSpacing = spacing
            let pipeline = SlicePipeline(configuration: configuration)
            let whole = try pipeline.prepare(mr, as: .mr, bodyMask: nil, field: .wholeSlice)
            #expect(whole.inputWidth % 4 == 0 && whole.inputHeight % 4 == 0)
            #expect(whole.inputWidth >= 32 && whole.inputHeight >= 32)
            #expect(whole.inputWidth >= whole.geometry.resampledWidth && whole.inputHeight >= whole.geometry.resampledHeight)
            #expect(whole.inputWidth - whole.geometry.resampledWidth < 4 || whole.inputWidth == 32)
            #expect(whole.fieldCoverage().allSatisfy { $0 }, "spacing \(String(describing: spacing))")
            let cropped = try pipeline.prepare(mr, as: .mr, bodyMask: nil, field: .trainingSize)
            #expect(cropped.inputWidth == 32 && cropped.inputHeight == 32)
            #expect(cropped.fieldCoverage().contains(false))
        }
        // A slice no larger than the training field gets exactly the training image.
        let small = TrainingVolumes.head(ct: false, grid: GridSize(30, 26, 3), seed: 2)
        configuration.targetSpacing = nil
        let pipeline = SlicePipeline(configuration: configuration)
        let a = try pipeline.prepare(small, as: .mr, bodyMask: nil, field: .wholeSlice)
        let b = try pipeline.prepare(small, as: .mr, bodyMask: nil, field: .trainingSize)
        #expect((0..<a.sliceCount).allSatisfy { a.inputSlice($0) == b.inputSlice($0) })
    }

    @Test(arguments: [[SlicePlane.axial], [.axial, .coronal, .sagittal]])
    func resampledPlanesMirrorAndEnsemblesPredictEveryBodyVoxel(_ planes: [SlicePlane]) throws {
        let mr = Self.largeHead()
        let mask = BodyMask.compute(mr)
        for translator in [Self.translator(spacing: 1.6), Self.translator(size: 16, spacing: 0.8)] {
            let stack = PredictionStack(count: mr.grid.count, keepsSpread: true)
            let covered = try translator.predict(mr, bodyMask: mask, planes: planes, mirrorAverage: true, into: stack)
            #expect(covered == nil, "whole-slice conversion covers every voxel")
            #expect(stack.members == 2 * planes.count)
            let bad = (0..<mask.count).filter { mask[$0] && !(stack.mean[$0].isFinite && stack.mean[$0] > -1024) }
            #expect(bad.isEmpty, "\(bad.count) body voxels without a prediction")
        }
        // The old field (.trainingSize) leaves much of this body uncovered.
        let stack = PredictionStack(count: mr.grid.count, keepsSpread: false)
        let covered = try Self.translator().predict(mr, bodyMask: mask, planes: planes, field: .trainingSize, into: stack)
        let field = try #require(covered)
        let uncovered = (0..<mask.count).filter { mask[$0] && !field[$0] }.count
        #expect(uncovered > 0)
        let qa = QualityCheck.assess(mr: mr, syntheticCT: VolumeTranslator.syntheticCT(like: mr, values: stack.mean, bodyMask: mask),
                                     bodyMask: mask, covered: covered, models: [], planes: nil)
        #expect(qa.warnings.map(\.code) == ["body_outside_field"])
        #expect(abs(qa.bodyInsideField - (1 - Double(uncovered) / Double(qa.bodyVoxels))) < 1e-12)
    }

    @Test func theMemoryEstimateCountsTheFullResolutionMapsAndSaturates() {
        let translator = Self.translator()
        // ngf 4, one input and one output channel: 4 · ((19·4 + 3)/4 + 1 + 1) bytes per pixel.
        #expect(translator.memoryEstimate(width: 100, height: 50) == 100 * 50 * 4 * 21)
        #expect(translator.memoryEstimate(width: Int.max, height: 2) == Int.max)
    }

    /// How many slices one generator call holds, by hand: the share of the slices in flight, of the volume's
    /// slices, of the 1 GiB budget and of the 65 536-pixel limit, whichever is smallest, never less than one.
    @Test func aGeneratorCallHoldsItsShareOfTheBatchUpToTheMemoryBudgetAndThePixelLimit() {
        func calls(_ batch: Int, chains: Int = 2, slices: Int = 150, bytes: Int = 1 << 20, side: Int, images: Int = 1) -> Int {
            VolumeTranslator.slicesPerCall(batchSize: batch, chains: chains, slices: slices, bytesPerImage: bytes,
                                           pixelsPerImage: side * side, imagesPerSlice: images)
        }
        #expect(VolumeTranslator.callPixelLimit == 65_536)
        #expect(calls(4, side: 96) == 2)                      // 4 in flight over two calls; 9216 px each
        #expect(calls(4, chains: 1, side: 96) == 4)
        #expect(calls(16, side: 96) == 7)                     // 65 536 / 9216 = 7.1 slices of 96²
        #expect(calls(16, side: 96, images: 2) == 3)          // mirror averaging: two images per slice
        #expect(calls(4, side: 256) == 1)                     // one 256² slice is the whole limit
        #expect(calls(4, side: 256, images: 2) == 1)          // more than the limit, still one slice
        #expect(calls(4, side: 128) == 2)                     // 4 × 128² = the limit; the batch gives 2
        #expect(calls(64, side: 128) == 4)
        #expect(calls(4, slices: 1, side: 96) == 1)           // one slice: one call of one
        #expect(calls(64, bytes: 100 << 20, side: 32) == 5)   // 1 GiB / (100 MiB × 2 calls) = 5.1
        #expect(calls(64, bytes: 800 << 20, side: 32) == 1)   // over the budget: still one slice
        #expect(calls(64, bytes: Int.max, side: 32) == 1)     // an estimate that saturated
        #expect(calls(0, side: 96) == 1)
    }

    /// The estimate covers what one more image really adds to an inference call: the growth of the activation
    /// arena and the workspace from a batch of 1 to a batch of 2 (f32 and bf16; oneDNN's per-thread copies are
    /// outside both and inside the estimate's margin), while staying within 3× of it.
    @Test(arguments: [Precision.f32, .bf16])
    func theMemoryEstimateCoversTheMeasuredGrowthPerImage(precision: Precision) {
        let generator = ResnetGenerator(GeneratorConfiguration(ngf: 16, residualBlocks: 2))
        generator.setPrecision(precision)
        let translator = VolumeTranslator(generator: generator, preprocessing: PreprocessingConfiguration())
        func measured(_ batch: Int) -> Int {
            generator.releaseInferenceBuffers()
            _ = generator.infer(Tensor(shape: [batch, 1, 64, 48]))
            return generator.inferenceMemory.totalBytes
        }
        let perImage = measured(2) - measured(1)
        let estimate = translator.memoryEstimate(width: 48, height: 64)
        #expect(perImage > 0 && estimate >= perImage, "estimate \(estimate) B, measured \(perImage) B per image")
        #expect(estimate <= 3 * perImage, "estimate \(estimate) B, measured \(perImage) B per image")
    }
}
