import Foundation
import NIfTI
@testable import Preprocessing
import Testing
import TestSupport

/// The real sample volumes (SampleData/real, see its PROVENANCE.md).
func realVolumeURL(_ name: String) -> URL {
    TestSupport.packageRoot.appendingPathComponent("SampleData/real/\(name).nii.gz")
}

@Suite struct RealVolumeTests {
    /// "Done when": the real CT through the whole preprocessing with an identity network comes back with the
    /// same dims, affine and header, and inside the body mask within the window the same HU within 0.5 (below
    /// the window: −1024); outside the body mask air (−1024, `ctOutsideBody` .air: the table is gone);
    /// written with NIfTIFile and read back, the geometry is unchanged.
    @Test(arguments: SlicePlane.allCases, [1, 3])
    func realCTThroughIdentityNetwork(plane: SlicePlane, context: Int) throws {
        let ct = try NIfTIFile.read(realVolumeURL("example_ct_sm_3mm"))
        var configuration = PreprocessingConfiguration()
        configuration.plane = plane
        configuration.contextSlices = context
        let pipeline = SlicePipeline(configuration: configuration)
        let prepared = try pipeline.prepare(ct, as: .ct)
        let back = pipeline.reassemble(identityNetwork(prepared), like: prepared, as: .ct)
        #expect(back.grid == ct.grid && back.affine == ct.affine && back.header == ct.header)
        var worst: Float = 0, inside = 0
        for (index, (a, b)) in zip(back.voxels, ct.voxels).enumerated() {
            if !prepared.bodyMask[index] {
                #expect(a == -1024)
            } else if b >= -1024 && b <= 3000 {
                worst = max(worst, abs(a - b))
                inside += 1
            } else {
                #expect(a == (b < -1024 ? -1024 : 3000))
            }
        }
        #expect(worst <= 0.5)
        #expect(inside > ct.grid.count / 2)
        #expect(prepared.bodyMask.filter { !$0 }.count > ct.grid.count / 4)

        let directory = try TestSupport.makeTemporaryDirectory("prep-real")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("sct.nii.gz")
        try NIfTIFile.write(back, to: url, as: .int16)
        let reread = try NIfTIFile.read(url)
        #expect(reread.grid == ct.grid && reread.affine == ct.affine)
        #expect(maxAbsDifference(reread.voxels, back.voxels) <= 0.5)
    }

    /// The body masks of the three real volumes equal an independent numpy / scipy / scikit-image
    /// implementation of the same steps (make_masks.py).
    @Test(arguments: ["colin27_ch2_t1", "example_ct_sm_3mm", "someones_anatomy"])
    func realBodyMasksMatchScipy(name: String) throws {
        let volume = try NIfTIFile.read(realVolumeURL(name))
        let reference = try NIfTIFile.read(TestSupport.fixturesDirectory.appendingPathComponent("preprocessing/\(name)_mask.nii.gz"))
        #expect(reference.grid == volume.grid)
        let mask = BodyMask.compute(volume)
        var differ = 0, count = 0
        for (m, r) in zip(mask, reference.voxels) {
            if m != (r > 0.5) { differ += 1 }
            if m { count += 1 }
        }
        #expect(differ == 0, "\(name): \(differ) of \(count) voxels differ")
        #expect(Double(count) / Double(volume.grid.count) > 0.3)
    }

    /// A real MR head (uint8, 181×217×181): percentiles inside the body map to [−1, 1], the padded background
    /// is −1, and the MR round trip through an identity network is exact inside the body and the percentile range.
    @Test func realMRPreparation() throws {
        let mr = try NIfTIFile.read(realVolumeURL("colin27_ch2_t1"))
        let pipeline = SlicePipeline(configuration: PreprocessingConfiguration())
        let prepared = try pipeline.prepare(mr, as: .mr)
        #expect(prepared.sliceCount == 181 && prepared.background == -1)
        var inside: [Float] = []
        for (v, m) in zip(mr.voxels, prepared.bodyMask) where m { inside.append(v) }
        let lower = inside.withUnsafeMutableBufferPointer { Statistics.percentile($0, 0.5) }
        let upper = inside.withUnsafeMutableBufferPointer { Statistics.percentile($0, 99.5) }
        #expect(prepared.intensityMap.lower == lower && prepared.intensityMap.upper == upper)
        let middle = prepared.inputSlice(90)
        // numpy on the scipy reference mask: percentiles 0 and 187 (the 2 mm margin reaches air); slice 90 holds 0…171.
        #expect(lower == 0 && upper == 187)
        #expect(middle.min()! == -1 && abs(middle.max()! - Float(171.0 / 187 * 2 - 1)) < 1e-5 && middle.count == 256 * 256)
        // The top slice is above the head; the neck at the bottom is body.
        #expect(prepared.bodyFraction(ofSlice: 180) < 0.05 && prepared.bodyFraction(ofSlice: 90) > 0.5)
        let back = pipeline.reassemble(identityNetwork(prepared), like: prepared, as: .mr)
        #expect(back.affine == mr.affine && back.header == mr.header)
        var worst: Float = 0
        for (index, (a, b)) in zip(back.voxels, mr.voxels).enumerated() where prepared.bodyMask[index] {
            if Double(b) >= lower && Double(b) <= upper { worst = max(worst, abs(a - b)) }
        }
        #expect(worst < 1e-3)
    }

    /// The loader on real files in a mix of .nii and .nii.gz, with an unreadable file among them, resampling
    /// to 4 mm and 64² slices: the broken file is reported, pairs repeat for a seed across loaders.
    @Test func loaderOnRealFiles() throws {
        let directory = try TestSupport.makeTemporaryDirectory("prep-loader")
        defer { try? FileManager.default.removeItem(at: directory) }
        let mrDirectory = directory.appendingPathComponent("mr"), ctDirectory = directory.appendingPathComponent("ct")
        for d in [mrDirectory, ctDirectory] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try FileManager.default.copyItem(at: realVolumeURL("colin27_ch2_t1"), to: mrDirectory.appendingPathComponent("a_colin.nii.gz"))
        try NIfTIFile.write(try NIfTIFile.read(realVolumeURL("someones_anatomy")), to: mrDirectory.appendingPathComponent("b_anatomy.nii"))
        try Data("not a volume".utf8).write(to: mrDirectory.appendingPathComponent("c_broken.nii.gz"))
        try FileManager.default.copyItem(at: realVolumeURL("example_ct_sm_3mm"), to: ctDirectory.appendingPathComponent("ct.nii.gz"))
        var configuration = PreprocessingConfiguration()
        configuration.sliceSize = 64
        configuration.targetSpacing = 4
        configuration.contextSlices = 3
        let cache = directory.appendingPathComponent("cache")
        let mrFiles = try NIfTIFile.volumeFiles(in: mrDirectory), ctFiles = try NIfTIFile.volumeFiles(in: ctDirectory)
        #expect(mrFiles.count == 3)
        let loader = try UnpairedSliceLoader(mrFiles: mrFiles, ctFiles: ctFiles, configuration: configuration,
                                             seed: 7, augment: true, cacheDirectory: cache)
        let pairs = (0..<20).map { loader.pair(at: $0) }
        #expect(pairs.allSatisfy { $0.mr.count == 3 * 64 * 64 && $0.ct.count == 3 * 64 * 64 })
        #expect(loader.skippedFiles.map(\.url.lastPathComponent) == ["c_broken.nii.gz"])
        #expect(!loader.skippedFiles[0].reason.contains(mrDirectory.path))
        #expect(loader.epochLength > 100)
        let again = try UnpairedSliceLoader(mrFiles: mrFiles, ctFiles: ctFiles, configuration: configuration,
                                            seed: 7, augment: true, cacheDirectory: cache)
        for i in 0..<20 { #expect(again.pair(at: i).mr == pairs[i].mr && again.pair(at: i).ct == pairs[i].ct) }
        // CT slices lie in [−1, 1].
        #expect(pairs.allSatisfy { $0.ct.allSatisfy { (-1...1).contains($0) } })
    }
}
