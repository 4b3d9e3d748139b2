import Foundation
import Testing
import NIfTI
import Safetensors
import TestSupport

/// Issue 9: malformed checkpoint files through `mr2ct train --resume`. A damaged file in the newest set makes the
/// resume fall back to the previous set and say why; damaged in every set, it is one clear error naming the file
/// (`mr2ct: <path>: <reason>`), exit status 1, and the run folder's sets are left as they were.
@Suite(.serialized)
struct SafetensorsTrainCLITests {
    /// A small volume with a body-like box (MR: positive intensities; CT: soft tissue in air, in HU).
    static func volume(ct: Bool, seed: Int) -> Volume {
        let nx = 20, ny = 20, nz = 4
        var voxels = [Float](repeating: ct ? -1000 : 0, count: nx * ny * nz)
        for k in 0 ..< nz { for j in 4 ..< 16 { for i in 3 ..< 17 {
            voxels[i + nx * (j + ny * k)] = ct ? Float(20 + (i * j + seed) % 60) : Float(200 + (i + 3 * j + seed) % 90)
        } } }
        return Volume(grid: GridSize(nx, ny, nz), voxels: voxels, affine: .scaling(SIMD3(2, 2, 3)))
    }

    /// A trained tiny run (4 iterations, a checkpoint set after each; the newest three are kept).
    static func makeRun(_ root: URL) throws -> URL {
        let mr = root.appendingPathComponent("mr"), ct = root.appendingPathComponent("ct")
        for folder in [mr, ct] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        for n in 0 ..< 2 {
            try NIfTIFile.write(volume(ct: false, seed: n), to: mr.appendingPathComponent("mr\(n).nii.gz"))
            try NIfTIFile.write(volume(ct: true, seed: n), to: ct.appendingPathComponent("ct\(n).nii.gz"))
        }
        let run = root.appendingPathComponent("run")
        let r = try TestSupport.runMR2CT(["train", "--mr", mr.path, "--ct", ct.path, "--run", run.path,
                                          "--iterations", "4", "--checkpoint-every", "1", "--slice-size", "24",
                                          "--ngf", "4", "--ndf", "4", "--residual-blocks", "1", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        return run
    }

    static func sets(_ run: URL) -> [URL] {
        let folder = run.appendingPathComponent("checkpoints")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasPrefix("iter_") }.sorted()
        return names.map { folder.appendingPathComponent($0) }
    }

    /// Damages `file` of a set in one of several ways.
    static func damage(_ url: URL, how: String) throws {
        let bytes = try Data(contentsOf: url)
        switch how {
        case "truncated": try bytes.prefix(bytes.count / 2).write(to: url)
        case "garbage-header":
            var copy = bytes
            for i in 8 ..< 40 { copy[i] = UInt8(ascii: "#") }
            try copy.write(to: url)
        case "wrong-shapes":
            let archive = try SafetensorsFile.read(url)
            var tensors = try archive.names.map { ($0, try archive.tensor(named: $0).shape, try archive.tensor(named: $0).values) }
            tensors[0].1 = [tensors[0].2.count]  // same values, flattened shape
            try SafetensorsFile.write(tensors.map { (name: $0.0, shape: $0.1, values: $0.2) }, metadata: archive.metadata, to: url)
        case "missing-tensor":
            let archive = try SafetensorsFile.read(url)
            let tensors = try archive.names.dropFirst().map { (name: $0, shape: try archive.tensor(named: $0).shape,
                                                               values: try archive.tensor(named: $0).values) }
            try SafetensorsFile.write(tensors, metadata: archive.metadata, to: url)
        default: Issue.record("unknown damage \(how)")
        }
    }

    @Test func damagedCheckpointFilesFallBackOrFailClearly() throws {
        let root = try TestSupport.makeTemporaryDirectory("safetensors-train")
        defer { try? FileManager.default.removeItem(at: root) }
        let pristine = try Self.makeRun(root)
        try #require(Self.sets(pristine).count >= 2, "two checkpoint sets")

        for (file, how) in [("G_A.safetensors", "truncated"), ("D_B.safetensors", "wrong-shapes"),
                            ("optimizer_G.safetensors", "missing-tensor"), ("pools.safetensors", "garbage-header")] {
            // 1. Damaged in the newest set only: resume from the previous set, saying why.
            let run = root.appendingPathComponent("latest-\(file)")
            try FileManager.default.copyItem(at: pristine, to: run)
            let newest = try #require(Self.sets(run).last)
            try Self.damage(newest.appendingPathComponent(file), how: how)
            let r = try TestSupport.runMR2CT(["train", "--run", run.path, "--resume", "--threads", "1"])
            #expect(r.status == 0, "\(file) \(how) in the newest set: \(r.stderr)")
            #expect(r.stderr.contains(file), "\(file): the fall-back names the damaged file: \(r.stderr)")

            // 2. Damaged in every set: one clear error naming the file, exit 1, the sets untouched.
            let broken = root.appendingPathComponent("all-\(file)")
            try FileManager.default.copyItem(at: pristine, to: broken)
            for set in Self.sets(broken) { try Self.damage(set.appendingPathComponent(file), how: how) }
            let before = Self.sets(broken).map(\.lastPathComponent)
            let failed = try TestSupport.runMR2CT(["train", "--run", broken.path, "--resume", "--threads", "1"])
            #expect(failed.status == 1, "\(file) \(how) everywhere: exit \(failed.status), \(failed.stderr)")
            let last = failed.stderr.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.hasPrefix("mr2ct: ") && last.contains("\(file): "), "\(file): \(failed.stderr)")
            #expect(Self.sets(broken).map(\.lastPathComponent) == before, "no set added or removed")
            print("\(file) \(how): \(last)")
        }
    }
}
