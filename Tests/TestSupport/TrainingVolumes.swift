import Foundation
import MR2CTSupport
import NIfTI

/// Small synthetic head volumes for training tests: an ellipsoidal head (skin, skull shell, brain, ventricles) in
/// air, with MR-like (T1: bright fat/skin, dark bone) and CT-like (HU) intensities and a little seeded noise.
/// Each subject has its own size and position, so an MR folder and a CT folder are unpaired, as in training.
public enum TrainingVolumes {
    /// One head volume of `grid` voxels (1 mm × 1 mm × 3 mm) as MR or CT, its head scaled by `scale`.
    public static func head(ct: Bool, grid: GridSize, scale: Double = 1, shift: Double = 0, seed: UInt64) -> Volume {
        var random = SeededRandom(seed: seed)
        var voxels = [Float](repeating: 0, count: grid.count)
        let cx = Double(grid.nx - 1) / 2 + shift, cy = Double(grid.ny - 1) / 2, cz = Double(grid.nz - 1) / 2
        let ax = 0.42 * Double(grid.nx) * scale, ay = 0.36 * Double(grid.ny) * scale, az = 0.55 * Double(grid.nz) + 1
        for k in 0..<grid.nz {
            for j in 0..<grid.ny {
                for i in 0..<grid.nx {
                    let x = (Double(i) - cx) / ax, y = (Double(j) - cy) / ay, z = (Double(k) - cz) / az
                    let r = (x * x + y * y + z * z).squareRoot()
                    let ventricle = ((Double(i) - cx) / (0.12 * ax)).magnitude < 1 && ((Double(j) - cy) / (0.3 * ay)).magnitude < 1
                    var value: Double
                    if r > 1 { value = ct ? -1000 : 0 }                       // air
                    else if r > 0.92 { value = ct ? 20 : 700 }               // skin / fat
                    else if r > 0.80 { value = ct ? 1100 : 60 }              // skull
                    else if ventricle { value = ct ? 8 : 160 }               // CSF
                    else { value = ct ? 35 : 420 }                           // brain
                    value += (ct ? 12 : 15) * random.nextNormal()
                    voxels[grid.index(i, j, k)] = Float(ct ? value : max(0, value))
                }
            }
        }
        let affine = Affine(rows: [[1, 0, 0, -Double(grid.nx) / 2], [0, 1, 0, -Double(grid.ny) / 2],
                                   [0, 0, 3, -1.5 * Double(grid.nz)], [0, 0, 0, 1]])
        return Volume(grid: grid, voxels: voxels, affine: affine)
    }

    /// Writes `mrCount` MR and `ctCount` CT volumes (`<dir>/mr/mr_N.nii.gz`, `<dir>/ct/ct_N.nii.gz`) of about
    /// `size`×`size`×`slices` voxels and returns the two folders.
    @discardableResult
    public static func writeUnpairedFolders(in directory: URL, mrCount: Int = 2, ctCount: Int = 2, size: Int = 36,
                                            slices: Int = 6, seed: UInt64 = 1) throws -> (mr: URL, ct: URL) {
        let mr = directory.appendingPathComponent("mr", isDirectory: true)
        let ct = directory.appendingPathComponent("ct", isDirectory: true)
        try FileManager.default.createDirectory(at: mr, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: ct, withIntermediateDirectories: true)
        for n in 0..<mrCount {
            let grid = GridSize(size + 2 * n, size - 2 * n, slices + n)
            try NIfTIFile.write(head(ct: false, grid: grid, scale: 1 - 0.05 * Double(n), shift: Double(n), seed: seed &+ UInt64(n)),
                                to: mr.appendingPathComponent("mr_\(n).nii.gz"))
        }
        for n in 0..<ctCount {
            let grid = GridSize(size - 2 * n, size + 2 * n, slices + 1 - n % 2)
            try NIfTIFile.write(head(ct: true, grid: grid, scale: 0.95 + 0.05 * Double(n), shift: -Double(n), seed: seed &+ 100 &+ UInt64(n)),
                                to: ct.appendingPathComponent("ct_\(n).nii.gz"))
        }
        return (mr, ct)
    }

    /// Writes paired (same grid, same head) MR and CT validation volumes, `<dir>/val_mr/case_N.nii.gz` and
    /// `<dir>/val_ct/case_N.nii.gz`.
    @discardableResult
    public static func writePairedFolders(in directory: URL, count: Int = 1, size: Int = 36, slices: Int = 6,
                                          seed: UInt64 = 7) throws -> (mr: URL, ct: URL) {
        let mr = directory.appendingPathComponent("val_mr", isDirectory: true)
        let ct = directory.appendingPathComponent("val_ct", isDirectory: true)
        try FileManager.default.createDirectory(at: mr, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: ct, withIntermediateDirectories: true)
        for n in 0..<count {
            let grid = GridSize(size, size, slices)
            try NIfTIFile.write(head(ct: false, grid: grid, seed: seed &+ UInt64(n)), to: mr.appendingPathComponent("case_\(n).nii.gz"))
            try NIfTIFile.write(head(ct: true, grid: grid, seed: seed &+ 50 &+ UInt64(n)), to: ct.appendingPathComponent("case_\(n).nii.gz"))
        }
        return (mr, ct)
    }
}
