import Foundation
import Testing
@testable import Conversion
import CycleGAN
import SyntheticCT
import NeuralNetwork
import NIfTI
import Preprocessing
import TestSupport

/// Spearman's rank correlation (ties get their average rank), for the uncertainty test.
func spearman(_ x: [Double], _ y: [Double]) -> Double {
    func ranks(_ v: [Double]) -> [Double] {
        let order = v.indices.sorted { v[$0] < v[$1] }
        var r = [Double](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
            for k in i...j { r[order[k]] = Double(i + j) / 2 + 1 }
            i = j + 1
        }
        return r
    }
    let a = ranks(x), b = ranks(y)
    let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for i in a.indices {
        sab += (a[i] - ma) * (b[i] - mb)
        saa += (a[i] - ma) * (a[i] - ma)
        sbb += (b[i] - mb) * (b[i] - mb)
    }
    return sab / (saa * sbb).squareRoot()
}

/// The uncertainty map (SD over ensemble members, planes, mirror images) and the user's own mask.
struct UncertaintyAndMaskTests {
    @Test func spearmanMatchesScipyWithTies() {
        // scipy.stats.spearmanr([1,2,2,3,5,4], [2,1,4,4,6,3]).correlation
        #expect(abs(spearman([1, 2, 2, 3, 5, 4], [2, 1, 4, 4, 6, 3]) - 0.6617647058823529) < 1e-12)
    }

    @Test func theUncertaintyIsTheSDOfEveryModelsPlainAndMirroredPredictions() throws {
        let (a, b, folder) = try EnsembleTests.twoModels()
        defer { try? FileManager.default.removeItem(at: folder) }
        // A lopsided head on a 32 × 32 RAS grid, padded evenly (16 + 16) to the models' 64-pixel slices: mirroring
        // the volume's first axis mirrors every network image exactly.
        let mr = TrainingVolumes.head(ct: false, grid: GridSize(32, 32, 5), shift: 3, seed: 21)
        let mirrored = VolumeTranslatorTests.mirroredLeftRight(mr)
        var options = ConversionOptions(outputDirectory: folder)
        options.mirrorAverage = true
        let translation = try ConversionRunner.translation(of: mr, with: [a, b], options: options, spread: true)
        #expect(translation.predictions == 4)
        #expect(ConversionRunner.predictionCount(models: [a, b], options: options) == 4)
        let sd = try #require(translation.standardDeviation)
        var members: [[Float]] = []
        for model in [a, b] {
            members.append(try model.translator.translate(mr).voxels)
            members.append(VolumeTranslatorTests.mirroredLeftRight(try model.translator.translate(mirrored)).voxels)
        }
        var worst = 0.0, largest = 0.0
        for v in 0..<mr.grid.count {
            guard translation.bodyMask[v] else {
                #expect(sd[v] == 0)
                continue
            }
            let values = members.map { Double($0[v]) }
            let mean = values.reduce(0, +) / 4
            let expected = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4).squareRoot()
            worst = max(worst, abs(Double(sd[v]) - expected))
            largest = max(largest, expected)
            #expect(abs(Double(translation.syntheticCT.voxels[v]) - mean) < 0.05)
        }
        #expect(largest > 10, "the members differ (\(largest) HU)")
        #expect(worst < 0.05, "SD against the hand-computed population SD of the 4 predictions: \(worst) HU")
    }

    /// Measured on all five held-out phantoms (README "Converting MR volumes"): Spearman 0.68–0.74 per subject;
    /// the test takes two and asserts ρ > 0.55.
    @Test func theUncertaintyIsLargerWhereTheErrorIsLargerOnHeldOutPhantoms() throws {
        let root = TestSupport.packageRoot.appendingPathComponent("SampleData")
        let models = try [QualityCheckTests.bundled, QualityCheckTests.bundled2].map(SyntheticCTModel.load)
        var options = ConversionOptions(outputDirectory: FileManager.default.temporaryDirectory)
        options.mirrorAverage = true
        for subject in ["sub-101", "sub-103"] {
            let mr = try NIfTIFile.read(root.appendingPathComponent("phantoms/heldout/mr/\(subject).nii.gz"))
            let ct = try NIfTIFile.read(root.appendingPathComponent("phantoms/heldout/ct/\(subject).nii.gz"))
            let t = try ConversionRunner.translation(of: mr, with: models, options: options, spread: true)
            let sd = try #require(t.standardDeviation)
            var s: [Double] = [], e: [Double] = []
            for v in 0..<mr.grid.count where t.bodyMask[v] {
                s.append(Double(sd[v]))
                e.append(abs(Double(t.syntheticCT.voxels[v]) - Double(ct.voxels[v])))
            }
            let rho = spearman(s, e)
            #expect(rho > 0.55, "\(subject): Spearman(SD, |error|) = \(rho)")
        }
    }

    @Test func insideTheUsersMaskEveryVoxelIsAPredictionAndOutsideItIsAir() throws {
        let mr = WholeSliceTests.largeHead()
        let auto = BodyMask.compute(mr)
        // A box that holds the whole head and air around it, as a planning system's external contour might.
        var box = [Bool](repeating: false, count: mr.grid.count)
        for k in 0..<mr.grid.nz { for j in 2..<(mr.grid.ny - 2) { for i in 1..<(mr.grid.nx - 1) { box[mr.grid.index(i, j, k)] = true } } }
        #expect((0..<box.count).contains { box[$0] && !auto[$0] })
        let model = try SyntheticCTModel.load(SyntheticCTModelTests.tinyModel)
        let t = try ConversionRunner.translation(of: mr, with: [model], options: ConversionOptions(outputDirectory: URL(fileURLWithPath: "/tmp")),
                                                 bodyMask: box)
        #expect(t.bodyMask == box)
        for v in 0..<box.count {
            if box[v] {
                #expect(t.syntheticCT.voxels[v] > -1024, "voxel \(v)")
                if !(t.syntheticCT.voxels[v] > -1024) { break }
            } else {
                #expect(t.syntheticCT.voxels[v] == -1024)
            }
        }
    }

    @Test func aMaskOffTheMRsGridIsOneClearErrorNamingBothFiles() throws {
        let folder = try TestSupport.makeTemporaryDirectory("mask-grid")
        defer { try? FileManager.default.removeItem(at: folder) }
        let mr = TrainingVolumes.head(ct: false, grid: GridSize(20, 18, 4), seed: 4)
        func write(_ v: Volume, _ name: String) throws -> URL {
            let url = folder.appendingPathComponent(name)
            try NIfTIFile.write(v, to: url)
            return url
        }
        let ones = { (grid: GridSize) in [Float](repeating: 1, count: grid.count) }
        let smaller = try write(Volume(grid: GridSize(20, 18, 3), voxels: ones(GridSize(20, 18, 3)), affine: mr.affine), "small.nii")
        var shifted = mr.affine
        shifted[0, 3] += 1.5
        let moved = try write(Volume(grid: mr.grid, voxels: ones(mr.grid), affine: shifted), "moved.nii")
        let empty = try write(Volume(grid: mr.grid, voxels: [Float](repeating: 0, count: mr.grid.count), affine: mr.affine), "empty.nii")
        let good = try write(Volume(grid: mr.grid, voxels: ones(mr.grid), affine: mr.affine), "good.nii")
        for (url, words) in [(smaller, ["20×18×3", "20×18×4", "/x/mr.nii"]), (moved, ["affine", "1.5", "/x/mr.nii"]),
                             (empty, ["no voxel"]), (folder.appendingPathComponent("absent.nii"), ["cannot be read"])] {
            do {
                _ = try ConversionRunner.readMask(url, for: mr, mrPath: "/x/mr.nii", options: .init())
                Issue.record("\(url.lastPathComponent) accepted")
            } catch {
                let text = "\(error)"
                #expect(text.hasPrefix("mask \(url.path) "), "\(text)")
                #expect(!text.contains("\n"))
                for word in words { #expect(text.contains(word), "\(text) lacks \(word)") }
            }
        }
        #expect(try ConversionRunner.readMask(good, for: mr, mrPath: "/x/mr.nii", options: .init()).allSatisfy { $0 })
    }

    @Test func trainingStoresTheMRHistogramInTheGeneratorsAndReusesItFromTheCache() throws {
        let folder = try TestSupport.makeTemporaryDirectory("train-histogram")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (mrFolder, ctFolder) = try TrainingVolumes.writeUnpairedFolders(in: folder, mrCount: 2, ctCount: 1)
        var configuration = PreprocessingConfiguration()
        configuration.sliceSize = 48
        let mrFiles = try NIfTIFile.volumeFiles(in: mrFolder), ctFiles = try NIfTIFile.volumeFiles(in: ctFolder)
        let cache = folder.appendingPathComponent("cache")
        var expected = IntensityHistogram(normalization: configuration.mrNormalization)
        for url in mrFiles { expected.add(IntensityHistogram(mr: try NIfTIFile.read(url), configuration: configuration)) }
        let cold = try UnpairedSliceLoader(mrFiles: mrFiles, ctFiles: ctFiles, configuration: configuration, seed: 1, cacheDirectory: cache)
        #expect(cold.mrIntensityHistogram == expected)
        let warm = try UnpairedSliceLoader(mrFiles: mrFiles, ctFiles: ctFiles, configuration: configuration, seed: 1, cacheDirectory: cache)
        #expect(warm.mrIntensityHistogram == expected)
        // A cache from before the histogram (its sidecar gone) recomputes it.
        for name in try FileManager.default.contentsOfDirectory(atPath: cache.path) where name.hasSuffix(".histogram.json") {
            try FileManager.default.removeItem(at: cache.appendingPathComponent(name))
        }
        let old = try UnpairedSliceLoader(mrFiles: mrFiles, ctFiles: ctFiles, configuration: configuration, seed: 1, cacheDirectory: cache)
        #expect(old.mrIntensityHistogram == expected)

        var training = TrainingConfiguration()
        training.preprocessing = configuration
        let metadata = TrainingCheckpoint.generatorMetadata(training, role: "G_A", iteration: 3, mrHistogram: expected)
        #expect(metadata[IntensityHistogram.metadataKey].flatMap(IntensityHistogram.init(json:)) == expected)
        #expect(TrainingCheckpoint.generatorMetadata(training, role: "G_A", iteration: 3)[IntensityHistogram.metadataKey] == nil)
    }
}
