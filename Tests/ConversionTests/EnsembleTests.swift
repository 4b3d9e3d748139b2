import Foundation
import Testing
@testable import Conversion
import CycleGAN
import SyntheticCT
import NIfTI
import Safetensors
import TestSupport

/// Ensembles: several models' synthetic CTs averaged in HU.
struct EnsembleTests {
    /// The tiny PyTorch-written model, and a copy whose weights are perturbed (another "run").
    static func twoModels() throws -> (SyntheticCTModel, SyntheticCTModel, cleanup: URL) {
        let folder = try TestSupport.makeTemporaryDirectory("ensemble")
        let archive = try SafetensorsFile.read(SyntheticCTModelTests.tinyModel)
        let tensors = try archive.names.enumerated().map { index, name in
            let t = try archive.tensor(named: name)
            return (name: name, shape: t.shape, values: t.values.enumerated().map { $1 + 0.05 * Float(($0 + index) % 7 - 3) })
        }
        let other = folder.appendingPathComponent("other_G_A.safetensors")
        try SafetensorsFile.write(tensors, metadata: archive.metadata, to: other)
        return (try SyntheticCTModel.load(SyntheticCTModelTests.tinyModel), try SyntheticCTModel.load(other), folder)
    }

    @Test func anEnsembleIsTheMeanOfItsModelsInHUOnTheMRsGrid() throws {
        let (a, b, folder) = try Self.twoModels()
        defer { try? FileManager.default.removeItem(at: folder) }
        let mr = try VolumeTranslatorTests.mr()
        let options = ConversionOptions(outputDirectory: folder)
        let sctA = try a.translator.translate(mr), sctB = try b.translator.translate(mr)
        let difference = zip(sctA.voxels, sctB.voxels).map { abs($0 - $1) }.max() ?? 0
        #expect(difference > 1, "the two models differ (\(difference) HU)")
        var steps: [(Int, Int)] = []
        let ensemble = try ConversionRunner.translate(mr, with: [a, b], options: options) { steps.append(($0, $1)) }
        var worst: Float = 0
        for v in 0..<mr.grid.count { worst = max(worst, abs(ensemble.voxels[v] - (sctA.voxels[v] + sctB.voxels[v]) / 2)) }
        // 0.05 HU, not bit-exact: suites running at the same time switch the process-wide kernels to
        // single-threaded chunks (ComputeThreads.serial), which changes float rounding by up to ~0.01 HU.
        #expect(worst < 0.05)
        #expect(ensemble.grid == mr.grid && ensemble.affine == mr.affine && ensemble.header.descrip == sctA.header.descrip)
        #expect(steps.last.map { $0.0 == $0.1 } == true && steps.last?.1 == 2 * mr.grid.nz)
        #expect(steps.map(\.0) == steps.map(\.0).sorted(), "progress only moves forward")
        let single = try ConversionRunner.translate(mr, with: [a], options: options)
        #expect(zip(single.voxels, sctA.voxels).allSatisfy { abs($0 - $1) < 0.05 })
    }
}
