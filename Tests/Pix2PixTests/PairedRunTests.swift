import SyntheticCT
import Networks
import CycleGAN
import Foundation
import MR2CTSupport
import NIfTI
import NeuralNetwork
import Testing
import TestSupport
import Training
@testable import Pix2Pix

/// Paired runs on generated registered head pairs through the Training layer.
@Suite struct PairedRunTests {
    static func configuration(_ data: (mr: URL, ct: URL), generator: PairedGenerator, size: Int) -> PairedRunConfiguration {
        var c = PairedRunConfiguration()
        c.preprocessing.sliceSize = size
        c.model.generator = generator
        c.model.dropout = generator != .resnet
        c.model.norm = generator == .resnet ? .instance : .batch   // the U-Net case with BatchNorm statistics
        c.model.ngf = 2
        c.model.residualBlocks = 1
        c.model.ndf = 4
        c.model.discriminatorLayers = 2
        c.length = .iterations(6)
        c.augment = true
        c.options.mrDirectory = data.mr.path
        c.options.ctDirectory = data.ct.path
        c.options.loop = LoopOptions(checkpointEvery: 100, sampleEvery: 2, keepCheckpoints: 0)
        return c
    }

    final class StopAt: TrainingCallback {
        let stop: StopSignal
        init(_ stop: StopSignal) { self.stop = stop }
        func trainingDidStep(_ event: StepEvent) throws { if event.iteration == 3 { stop.request(SIGINT) } }
    }

    /// Stopped by a signal at iteration 3 and resumed: the same losses (bit for bit) and the same generator and
    /// discriminator (weights, BatchNorm statistics) as an uninterrupted run, U-Net dropout masks included; the
    /// run folder has its grids, report and a generator `mr2ct convert` loads; another model on it is refused.
    @Test(arguments: [(PairedGenerator.resnet, 36), (.unet128, 128)])
    func stoppedAndResumedRunIsBitIdentical(_ generator: PairedGenerator, _ size: Int) throws {
        let root = try TestSupport.makeTemporaryDirectory("paired-run")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writePairedFolders(in: root, count: 2, size: 36, slices: 6)
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        let c = Self.configuration(data, generator: generator, size: size)
        let whole = try PairedRun(directory: a, configuration: c, requireExisting: false) { _ in }
        #expect(whole.data.pairs.count == 2)
        #expect(whole.configuration.epochLength == whole.data.usable.count)
        #expect(whole.model.discriminator != nil)
        #expect(try whole.loop.run() == .completed(iteration: 6))

        let stop = StopSignal()
        do {
            let part = try PairedRun(directory: b, configuration: c, requireExisting: false) { _ in }
            part.loop.callbacks.append(StopAt(stop))
            #expect(try part.loop.run(stop: stop) == .stopped(signal: SIGINT, iteration: 3))
        }
        var messages: [String] = []
        let resumed = try PairedRun(directory: b, configuration: c, requireExisting: true) { messages.append($0) }
        #expect(messages.contains { $0.contains("resuming") && $0.contains("iteration 3 of 6") })
        #expect(try resumed.loop.run() == .completed(iteration: 6))

        func losses(_ run: URL) throws -> [[UInt64?]] {
            try RunLog.read(run.appendingPathComponent("log.ndjson")).filter { $0.kind == .train }.map { $0.values.dropLast().map { $0.value?.bitPattern } }
        }
        #expect(try losses(a).count == 6)
        #expect(try losses(a) == losses(b))
        let names = try RunLog.read(a.appendingPathComponent("log.ndjson")).first { $0.kind == .train }?.values.map(\.name)
        #expect(names == ["epoch", "lr", "G_GAN", "G_L1", "D_real", "D_fake", "seconds"])
        for (x, y) in [(whole.model.generator as ParameterContainer, resumed.model.generator as ParameterContainer),
                       (whole.model.discriminator!, resumed.model.discriminator!)] {
            for (p, q) in zip(x.parameters.map(\.value) + x.buffers.map(\.value), y.parameters.map(\.value) + y.buffers.map(\.value)) {
                #expect(p.toArray().map(\.bitPattern) == q.toArray().map(\.bitPattern))
            }
        }
        if generator != .resnet { #expect(!whole.model.generator.dropoutLayers.isEmpty) }
        for path in ["report.html", "samples/iter_0000002.png", "samples/iter_0000006.png", "checkpoints/latest/D.safetensors",
                     "checkpoints/latest/dropout.json", "checkpoints/latest/optimizer_D.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: b.appendingPathComponent(path).path), "\(path)")
        }
        // The run folder is a model for conversion: architecture and preprocessing from the generator's metadata.
        let model = try SyntheticCTModel.load(b)
        #expect(model.file.lastPathComponent == "G.safetensors")
        #expect(model.metadata["training"] == "paired")
        #expect(model.metadata["architecture"] == (generator == .resnet ? "resnet" : "unet"))
        #expect(model.preprocessing == resumed.configuration.preprocessing)
        #expect(model.trainingHistogram != nil)
        let mr = try NIfTIFile.read(data.mr.appendingPathComponent("case_0.nii.gz"))
        let sct = try model.translator.translate(mr)
        #expect(sct.grid == mr.grid)
        #expect(sct.voxels.allSatisfy { $0.isFinite })
        let inference = try #require(resumed.model.translator.infer(resumed.data.sampleBatch().mr).toArray() as [Float]?)
        #expect(model.generator.infer(resumed.data.sampleBatch().mr).toArray() == inference)

        var other = c
        other.model.lambdaL1 = 50
        #expect(throws: RunError.self) { _ = try PairedRun(directory: b, configuration: other, requireExisting: false) { _ in } }
    }

    /// λ_GAN = 0: no discriminator, no D files, only the L1 loss logged.
    @Test func pureRegressionBuildsNoDiscriminator() throws {
        let root = try TestSupport.makeTemporaryDirectory("paired-l1")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writePairedFolders(in: root, count: 1, size: 36, slices: 6)
        var c = Self.configuration(data, generator: .resnet, size: 36)
        c.model.lambdaGAN = 0
        c.length = .iterations(2)
        let run = try PairedRun(directory: root.appendingPathComponent("run"), configuration: c, requireExisting: false) { _ in }
        #expect(run.model.discriminator == nil)
        _ = try run.loop.run()
        let record = try #require(RunLog.read(root.appendingPathComponent("run/log.ndjson")).first { $0.kind == .train })
        #expect(record.values.map(\.name) == ["epoch", "lr", "G_L1", "seconds"])
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("run/checkpoints/latest/D.safetensors").path))
    }

    /// A pair on different grids is an error naming both files and what differs; nothing is resampled.
    @Test func pairOnDifferentGridsIsRefused() throws {
        let root = try TestSupport.makeTemporaryDirectory("paired-grid")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writePairedFolders(in: root, count: 1, size: 36, slices: 6)
        let ct = data.ct.appendingPathComponent("case_0.nii.gz")
        try NIfTIFile.write(TrainingVolumes.head(ct: true, grid: GridSize(36, 34, 6), seed: 3), to: ct)
        let pairs = try PairedSliceDataset.match(mrFiles: [data.mr.appendingPathComponent("case_0.nii.gz")], ctFiles: [ct])
        let error = #expect(throws: RunError.self) {
            _ = try PairedSliceDataset(pairs: pairs, configuration: PairedRunConfiguration().preprocessing, seed: 0,
                                       augment: false, cropSize: nil)
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(pairs[0].mr.path) && text.contains(ct.path))
        #expect(text.contains("dims 36×36×6 vs 36×34×6") || text.contains("dims"))
    }

    /// The L1 term against a hand computation: 2 · (|0.5| + |0.1 − 0| + |0.9 − 1|) / 3 over the mask, gradient
    /// ±2/3 inside it and 0 outside; without a mask the mean over all four.
    @Test func maskedL1MatchesHandComputation() {
        let x = Tensor(shape: [1, 1, 2, 2], values: [0.5, -0.2, 0.1, 0.9])
        let t = Tensor(shape: [1, 1, 2, 2], values: [0, 0, 0, 1])
        let g = Tensor(shape: [1, 1, 2, 2])
        let masked = Loss.l1(x, target: t, mask: [1, 0, 1, 1], scale: 2, accumulatingInto: g)
        #expect(abs(masked - 2 * 0.7 / 3) < 1e-6)
        let third = 2.0 / 3
        let expectedMasked: [Double] = [third, 0, third, -third]
        #expect(TorchGoldens.maximumAbsoluteDifference(g.toArray(), expectedMasked.map { Float($0) }) < 1e-6)
        g.fill(0)
        let whole = Loss.l1(x, target: t, mask: nil, scale: 2, accumulatingInto: g)
        #expect(abs(whole - 2 * 0.9 / 4) < 1e-6)
        #expect(TorchGoldens.maximumAbsoluteDifference(g.toArray(), [0.5, -0.5, 0.5, -0.5]) < 1e-6)
    }

    /// The configuration checks: the U-Net's size multiple, both weights 0, and the stored-run comparison.
    @Test func configurationIsValidatedInOnePlace() throws {
        var c = PairedRunConfiguration()
        c.preprocessing.sliceSize = 96
        #expect(throws: PairedConfigurationError.self) { try c.validate() }
        c.model.generator = .resnet
        try c.validate()
        c.model.lambdaGAN = 0
        c.model.lambdaL1 = 0
        #expect(throws: PairedConfigurationError.self) { try c.validate() }
        var d = PairedRunConfiguration()
        d.model.ngf = 32
        d.options.mrDirectory = "/elsewhere"
        #expect(PairedRunConfiguration().differences(from: d) == ["model.ngf: 64 ≠ 32"])
        #expect(PairedRunConfiguration().preprocessing.ctMapping == .softTissue)
    }
}

/// Conversion of a U-Net on slices that are not a multiple of its 2^stages: padded around with the background,
/// the prediction cut back (compared with a hand-padded call).
@Suite struct UNetConversionPaddingTests {
    @Test func slicesArePaddedToTheUNetMultipleAndCutBack() {
        let unet = UNetGenerator(UNetConfiguration(ngf: 2, downsamplings: 5, dropout: false, norm: .instance))
        unet.initializeWeights(seed: 4)
        let translator = VolumeTranslator(generator: unet, preprocessing: PairedRunConfiguration().preprocessing)
        let h = 40, w = 36, background: Float = -0.8
        var random = SeededRandom(seed: 2)
        let input = Tensor(shape: [2, 1, h, w], values: (0..<(2 * h * w)).map { _ in Float(random.nextUnitFloat()) * 2 - 1 })
        let output = translator.infer(input, background: background)
        #expect(output.shape == [2, 1, h, w])
        // By hand: 64 × 64, the image at rows 12…51 and columns 14…49.
        var padded = [Float](repeating: background, count: 2 * 64 * 64)
        for n in 0..<2 { for r in 0..<h { for c in 0..<w { padded[n * 4096 + (r + 12) * 64 + c + 14] = input.data[n * h * w + r * w + c] } } }
        let full = unet.infer(Tensor(shape: [2, 1, 64, 64], values: padded)).toArray()
        var expected: [Float] = []
        for n in 0..<2 { for r in 0..<h { for c in 0..<w { expected.append(full[n * 4096 + (r + 12) * 64 + c + 14]) } } }
        #expect(output.toArray() == expected)
    }
}
