import Foundation
import Testing
import DCGAN
import NIfTI

/// Patches cut at label-map positions: exact windows of the volume, centred on the labelled voxel
/// (columns i − side/2 … i + side/2 − 1, rows j likewise, slice k), classes in label order, and positions whose
/// window would leave the slice are not used.
@Suite struct PatchDatasetTests {
    @Test func patchesAreExactWindowsCentredOnLabelledVoxels() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("patches-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let volumes = root.appendingPathComponent("ct"), labels = root.appendingPathComponent("labels")
        for folder in [volumes, labels] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        let grid = GridSize(40, 36, 3)
        var voxels = [Float](repeating: 0, count: grid.count), map = [Float](repeating: 0, count: grid.count)
        for k in 0..<3 { for j in 0..<36 { for i in 0..<40 { voxels[grid.index(i, j, k)] = Float(i + 100 * j + 10000 * k) } } }
        map[grid.index(20, 17, 1)] = 7   // class "7": one position that fits
        map[grid.index(9, 25, 2)] = 3    // class "3": fits (8 ≤ i ≤ 32, 8 ≤ j ≤ 28 for side 16)
        map[grid.index(5, 17, 0)] = 3    // too near the left edge: unused
        try NIfTIFile.write(Volume(grid: grid, voxels: voxels, affine: .scaling(SIMD3(1, 1, 1))), to: volumes.appendingPathComponent("a.nii.gz"))
        try NIfTIFile.write(Volume(grid: grid, voxels: map, affine: .scaling(SIMD3(1, 1, 1))), to: labels.appendingPathComponent("a.nii.gz"))
        let range = IntensityRange(lower: 0, upper: 40000)
        let data = try PatchDataset(source: PatchSource(images: volumes.path, labels: labels.path, patchesPerClass: 10), side: 16,
                                    channels: 1, conditional: true, intensity: range, seed: 0)
        #expect(data.classNames == ["3", "7"] && data.classes == [0, 1])
        for (n, (ci, cj, ck)) in [(9, 25, 2), (20, 17, 1)].enumerated() {
            for y in 0..<16 { for x in 0..<16 {
                let expected = Float((ci - 8 + x) + 100 * (cj - 8 + y) + 10000 * ck)
                let value = range.value(data.values[n * 256 + y * 16 + x])
                #expect(abs(value - expected) < 0.01, "patch \(n) (\(x), \(y)): \(value) vs \(expected)")
            } }
        }
    }
}
