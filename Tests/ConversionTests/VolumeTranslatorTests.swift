import Foundation
import Testing
import CycleGAN
import SyntheticCT
import NeuralNetwork
import NIfTI
import Preprocessing
import Safetensors
import TestSupport
import Networks

/// VolumeTranslator: HU mapping, masking, geometry, batching, multi-plane fusion and mirror averaging.
struct VolumeTranslatorTests {
    static var fixtures: URL { TestSupport.fixturesDirectory.appendingPathComponent("conversion") }

    static func preprocessing(size: Int = 64) -> PreprocessingConfiguration {
        var p = PreprocessingConfiguration()
        p.sliceSize = size
        return p
    }

    static func tinyGenerator(seed: UInt64 = 3, channels: Int = 1) -> ResnetGenerator {
        let g = ResnetGenerator(GeneratorConfiguration(inputChannels: channels, outputChannels: 1, ngf: 4, residualBlocks: 1))
        g.initializeWeights(seed: seed)
        return g
    }

    static func mr(_ name: String = "mr_lps_int16.nii.gz") throws -> Volume {
        try NIfTIFile.read(fixtures.appendingPathComponent(name))
    }

    @Test func aConstantGeneratorGivesTheWindowMappedValueInsideTheBodyAndAirOutside() throws {
        // All weights zero: every instance norm sees zeros, so the output is tanh(final bias) everywhere, and the
        // CT window [-1024, 3000] maps it to -1024 + (tanh(b) + 1)/2 · 4024 HU.
        let g = Self.tinyGenerator()
        for p in g.parameters { p.value.data.update(repeating: 0) }
        let bias: Float = 0.5
        try #require(g.parameters.last?.name.hasSuffix(".bias") == true)
        g.parameters.last!.value.data[0] = bias
        let expected = -1024 + (Double(tanh(bias)) + 1) / 2 * 4024    // 1917.78… HU
        let mr = try Self.mr()
        let sct = try VolumeTranslator(generator: g, preprocessing: Self.preprocessing()).translate(mr)
        let mask = BodyMask.compute(mr)
        #expect(mask.contains(true) && mask.contains(false))
        var wrongInside = 0, wrongOutside = 0
        for v in 0..<mask.count {
            if mask[v] {
                if abs(Double(sct.voxels[v]) - expected) >= 0.05 { wrongInside += 1 }
            } else if sct.voxels[v] != -1024 {
                wrongOutside += 1
            }
        }
        #expect(wrongInside == 0)
        #expect(wrongOutside == 0)
    }

    @Test(arguments: ["mr_lps_int16.nii.gz", "mr_ras_float.nii"])
    func theSyntheticCTKeepsTheMRsGridAndHeaderGeometry(_ name: String) throws {
        let mr = try Self.mr(name)
        let sct = try VolumeTranslator(generator: Self.tinyGenerator(), preprocessing: Self.preprocessing()).translate(mr)
        #expect(sct.grid == mr.grid)
        #expect(sct.affine == mr.affine)
        let a = sct.header, b = mr.header
        #expect(a.dim == b.dim && a.pixdim == b.pixdim && a.xyztUnits == b.xyztUnits)
        #expect(a.qformCode == b.qformCode && a.sformCode == b.sformCode && a.srow == b.srow)
        #expect(a.quaternB == b.quaternB && a.quaternC == b.quaternC && a.quaternD == b.quaternD && a.qoffset == b.qoffset)
        #expect(a.sclSlope == 1 && a.sclInter == 0)
        #expect(sct.voxels.allSatisfy { $0.isFinite && $0 >= -1024 && $0 <= 3000 })
    }

    @Test func batchSizeDoesNotChangeTheResult() throws {
        let mr = try Self.mr()
        let translator = VolumeTranslator(generator: Self.tinyGenerator(seed: 9), preprocessing: Self.preprocessing())
        let one = try translator.translate(mr, batchSize: 1)
        let five = try translator.translate(mr, batchSize: 5)
        let difference = zip(one.voxels, five.voxels).map { abs($0 - $1) }.max() ?? 0
        #expect(difference < 1e-2)
        #expect(Set(one.voxels).count > 10, "the random generator gives varying HU")
    }

    @Test func severalPlanesAreAveragedInHU() throws {
        let mr = try Self.mr("mr_ras_float.nii")
        let translator = VolumeTranslator(generator: Self.tinyGenerator(seed: 5), preprocessing: Self.preprocessing())
        let axial = try translator.translate(mr, planes: [.axial])
        let coronal = try translator.translate(mr, planes: [.coronal])
        let both = try translator.translate(mr, planes: [.axial, .coronal, .axial])
        var steps: [(Int, Int)] = []
        let fused = try translator.translate(mr, planes: [.axial, .coronal]) { steps.append(($0, $1)) }
        // Not bit-exact: suites running at the same time switch the process-wide kernels to single-threaded
        // chunks (ComputeThreads.serial), which changes float rounding by up to ~0.01 HU.
        let repeatedDifference = zip(both.voxels, fused.voxels).map { abs($0 - $1) }.max() ?? 0
        #expect(repeatedDifference < 0.05, "a repeated plane counts once (\(repeatedDifference) HU)")
        for v in 0..<fused.voxels.count {
            #expect(abs(fused.voxels[v] - (axial.voxels[v] + coronal.voxels[v]) / 2) < 1e-2)
        }
        #expect(steps.last?.0 == steps.last?.1)
        #expect(steps.last?.1 == mr.grid.nz + mr.grid.ny)
    }

    /// `volume` with its first (left–right, for this RAS grid) voxel axis reversed; same affine.
    static func mirroredLeftRight(_ volume: Volume) -> Volume {
        let g = volume.grid
        var voxels = volume.voxels
        for k in 0..<g.nz { for j in 0..<g.ny { for i in 0..<g.nx {
            voxels[g.index(i, j, k)] = volume.voxels[g.index(g.nx - 1 - i, j, k)]
        } } }
        return volume.replacingVoxels(voxels)
    }

    @Test func mirrorAveragingIsTheMeanOfThePlainAndTheMirroredPredictionAndIsMirrorSymmetric() throws {
        // A lopsided head on a 32 × 32 RAS grid at the slice size: no resampling or padding, so mirroring the
        // volume's first axis is exactly mirroring every slice's rows.
        let mr = TrainingVolumes.head(ct: false, grid: GridSize(32, 32, 5), shift: 3, seed: 21)
        let mirroredMR = Self.mirroredLeftRight(mr)
        let translator = VolumeTranslator(generator: Self.tinyGenerator(seed: 13), preprocessing: Self.preprocessing(size: 32))
        let plain = try translator.translate(mr)
        let fromMirror = Self.mirroredLeftRight(try translator.translate(mirroredMR))
        let averaged = try translator.translate(mr, batchSize: 3, mirrorAverage: true)
        let averagedMirror = try translator.translate(mirroredMR, batchSize: 2, mirrorAverage: true)

        let asymmetry = zip(plain.voxels, fromMirror.voxels).map { abs($0 - $1) }.max() ?? 0
        #expect(asymmetry > 10, "the random generator is not mirror-symmetric by itself (\(asymmetry) HU)")
        var worstMean: Float = 0
        for v in 0..<plain.voxels.count {
            worstMean = max(worstMean, abs(averaged.voxels[v] - (plain.voxels[v] + fromMirror.voxels[v]) / 2))
        }
        #expect(worstMean < 0.05, "mirror average vs (plain + mirrored) / 2: \(worstMean) HU")
        let symmetry = zip(averaged.voxels, Self.mirroredLeftRight(averagedMirror).voxels).map { abs($0 - $1) }.max() ?? 0
        #expect(symmetry < 0.05, "translate(mirror(MR)) vs mirror(translate(MR)): \(symmetry) HU")
        #expect(averaged.grid == mr.grid && averaged.affine == mr.affine)
    }

    @Test func aGeneratorThatDoesNotFitThePreprocessingIsRefused() throws {
        let translator = VolumeTranslator(generator: Self.tinyGenerator(channels: 3), preprocessing: Self.preprocessing())
        #expect(throws: TranslationError.self) { try translator.translate(try Self.mr()) }
    }
}

/// Loading a model: a PyTorch-written generator file, run folders, and refusals.
struct SyntheticCTModelTests {
    static var tinyModel: URL { VolumeTranslatorTests.fixtures.appendingPathComponent("tiny_G_A.safetensors") }

    @Test func aGeneratorWrittenByPyTorchLoadsWithItsConfiguration() throws {
        let model = try SyntheticCTModel.load(Self.tinyModel)
        #expect((model.generator as? ResnetGenerator)?.configuration == GeneratorConfiguration(inputChannels: 1, outputChannels: 1, ngf: 4, residualBlocks: 1))
        #expect(model.preprocessing.sliceSize == 64 && model.preprocessing.plane == .axial)
        let archive = try SafetensorsFile.read(Self.tinyModel)
        #expect(Set(archive.names) == Set(model.generator.parameters.map(\.name)))
        for p in model.generator.parameters {
            let stored = try archive.tensor(named: p.name)
            #expect(stored.shape == p.value.shape, "\(p.name)")
            #expect(stored.values == p.value.toArray(), "\(p.name)")
        }
    }

    @Test func aRunFolderResolvesToBestThenLatest() throws {
        let run = try TestSupport.makeTemporaryDirectory("conv-run")
        defer { try? FileManager.default.removeItem(at: run) }
        let checkpoints = run.appendingPathComponent("checkpoints")
        for iteration in ["iter_0000100", "iter_0000200"] {
            let folder = checkpoints.appendingPathComponent(iteration)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Self.tinyModel, to: folder.appendingPathComponent("G_A.safetensors"))
        }
        try FileManager.default.createSymbolicLink(atPath: checkpoints.appendingPathComponent("latest").path,
                                                   withDestinationPath: "iter_0000200")
        #expect(try SyntheticCTModel.generatorFile(for: run).path.hasSuffix("checkpoints/latest/G_A.safetensors"))
        _ = try SyntheticCTModel.load(run)
        try FileManager.default.createSymbolicLink(atPath: checkpoints.appendingPathComponent("best").path,
                                                   withDestinationPath: "iter_0000100")
        #expect(try SyntheticCTModel.generatorFile(for: run).path.hasSuffix("checkpoints/best/G_A.safetensors"))
        #expect(throws: ModelError.self) { try SyntheticCTModel.load(checkpoints.appendingPathComponent("iter_0000300")) }
        #expect(throws: ModelError.self) { try SyntheticCTModel.load(TestSupport.fixturesDirectory) }
    }

    @Test func filesThatAreNotMRToCTGeneratorsAreRefusedWithTheirName() throws {
        let folder = try TestSupport.makeTemporaryDirectory("conv-models")
        defer { try? FileManager.default.removeItem(at: folder) }
        let archive = try SafetensorsFile.read(Self.tinyModel)
        let tensors = try archive.names.map { name in
            let t = try archive.tensor(named: name)
            return (name: name, shape: t.shape, values: t.values)
        }
        func variant(_ name: String, metadata: [String: String], tensors: [(name: String, shape: [Int], values: [Float])]) throws -> URL {
            let url = folder.appendingPathComponent(name)
            try SafetensorsFile.write(tensors, metadata: metadata, to: url)
            return url
        }
        var reversed = archive.metadata; reversed["direction"] = "CT->MR"
        var noGenerator = archive.metadata; noGenerator["generator"] = nil
        var badJSON = archive.metadata; badJSON["preprocessing"] = "{\"sliceSize\": 30}"
        var wider = archive.metadata; wider["generator"] = #"{"inputChannels":1,"outputChannels":1,"ngf":8,"residualBlocks":1,"dropout":false}"#
        let cases = [
            try variant("reversed.safetensors", metadata: reversed, tensors: tensors),
            try variant("nogenerator.safetensors", metadata: noGenerator, tensors: tensors),
            try variant("badpre.safetensors", metadata: badJSON, tensors: tensors),
            try variant("wider.safetensors", metadata: wider, tensors: tensors),
            try variant("missing.safetensors", metadata: archive.metadata, tensors: Array(tensors.dropLast())),
        ]
        let truncated = folder.appendingPathComponent("truncated.safetensors")
        try Data(try Data(contentsOf: Self.tinyModel).prefix(5000)).write(to: truncated)
        for url in cases + [truncated, folder.appendingPathComponent("absent.safetensors")] {
            do {
                _ = try SyntheticCTModel.load(url)
                Issue.record("\(url.lastPathComponent) loaded")
            } catch {
                let text = "\(error)"
                #expect(text.hasPrefix(url.path + ": "), "\(text)")
                #expect(!text.contains("\n"))
            }
        }
    }

    @Test(arguments: [false, true])
    func predictionsAddedVoxelByVoxelEqualWholeVolumeAddsBitForBit(_ spread: Bool) {
        // Conversion adds each batch of slices to the stack as it is predicted (no volume-sized buffer per
        // prediction); the mean and SD must be exactly those of adding each prediction as a whole volume.
        var random = SystemRandomNumberGenerator()
        let count = 1000, members = 5
        let predictions = (0..<members).map { _ in (0..<count).map { _ in Float.random(in: -1024...3000, using: &random) } }
        let whole = PredictionStack(count: count, keepsSpread: spread)
        for p in predictions { p.withUnsafeBufferPointer { whole.add($0) } }
        let piecewise = PredictionStack(count: count, keepsSpread: spread)
        let first = piecewise.beginPredictions(2)
        #expect(first == 1)
        // Members 1 and 2 interleaved voxel by voxel in a scattered order, as two predictions of one plane are.
        let order = (0..<count).map { ($0 * 389) % count }
        piecewise.accumulate { add in
            for i in order { add(predictions[0][i], i, first); add(predictions[1][i], i, first + 1) }
        }
        let rest = piecewise.beginPredictions(3)
        #expect(rest == 3 && piecewise.members == members)
        piecewise.accumulate { add in
            for m in 0..<3 { for i in order.reversed() { add(predictions[2 + m][i], i, rest + m) } }
        }
        #expect(piecewise.mean == whole.mean)
        #expect(piecewise.standardDeviation == whole.standardDeviation)
        // takeMean moves the buffer out.
        let mean = piecewise.takeMean()
        #expect(mean == whole.mean && piecewise.mean.isEmpty)
    }
}
