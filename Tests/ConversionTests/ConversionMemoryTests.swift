import Foundation
import Testing
@testable import Conversion
import NeuralNetwork
import NIfTI
import SyntheticCT
import TestSupport

/// What a conversion holds once its predictions are made.
struct ConversionMemoryTests {
    /// `ConversionRunner.convert` frees what the networks keep between inference calls (activation arenas,
    /// workspaces, transformed kernels) before the QA and the write, which need the volumes only; the written sCT
    /// is the translation's.
    @Test func convertingFreesTheNetworksInferenceBuffersBeforeWriting() throws {
        let folder = try TestSupport.makeTemporaryDirectory("conversion-memory")
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try SyntheticCTModel.load(SyntheticCTModelTests.tinyModel)
        let network = try #require(model.generator as? SequentialNetwork)
        let input = VolumeTranslatorTests.fixtures.appendingPathComponent("mr_lps_int16.nii.gz")
        let expected = try model.translator.translate(try NIfTIFile.read(input))
        #expect(network.inferenceMemory.contexts > 0 && network.inferenceMemory.activationBytes > 0,
                "a translation keeps its inference buffers for the next call")

        let options = ConversionOptions(outputDirectory: folder)
        let (plan, leftOut) = ConversionRunner.plan([ConversionItem(path: input.path)], options: options)
        #expect(leftOut.isEmpty && plan.count == 1)
        let result = ConversionRunner(models: [model], options: options).convert(plan[0])
        #expect(result.status == .ok, "\(result.error ?? "")")
        let memory = network.inferenceMemory
        #expect(memory.contexts == 0 && memory.activationBytes == 0 && memory.workspaceBytes == 0 && memory.kernelBytes == 0,
                "\(memory)")

        let written = try NIfTIFile.read(try #require(plan[0].output))
        #expect(written.grid == expected.grid)
        // int16 on disk: the translation's HU rounded.
        #expect(zip(written.voxels, expected.voxels).allSatisfy { abs($0 - $1.rounded()) <= 0.5 })
    }
}
