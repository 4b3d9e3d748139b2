import Foundation
import NIfTI
@testable import Preprocessing
import Testing
import TestSupport

/// Measured figures for the README (printed to stderr; the assertions are about correctness, not speed).
/// Run: swift test -c release -Xswiftc -enable-testing --skip-build --filter FiguresTests
@Suite(.serialized) struct FiguresTests {
    func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    @Test func preparationAndLoaderFigures() throws {
        var err = FileHandleErrorStream()
        let url = realVolumeURL("colin27_ch2_t1")
        var mr: Volume!
        let read = try seconds { mr = try NIfTIFile.read(url) }
        var mask: [Bool] = []
        let maskTime = seconds { mask = BodyMask.compute(mr) }
        var configuration = PreprocessingConfiguration()
        configuration.contextSlices = 3
        let pipeline = SlicePipeline(configuration: configuration)
        var prepared: PreparedVolume!
        let prepare = try seconds { prepared = try pipeline.prepare(mr, as: .mr) }
        #expect(prepared.bodyMask == mask)
        let inputs = seconds { for s in 0..<prepared.sliceCount { _ = prepared.inputSlice(s) } }
        let back = seconds { _ = pipeline.reassemble(identityNetwork(prepared), like: prepared, as: .mr) }
        print("colin27 181×217×181: read \(fmt(read)) s, body mask \(fmt(maskTime)) s, prepare (mask + map + slices) \(fmt(prepare)) s, "
              + "181 input slices 3×256² \(fmt(inputs)) s, identity reassembly \(fmt(back)) s", to: &err)

        let directory = try TestSupport.makeTemporaryDirectory("prep-figures")
        defer { try? FileManager.default.removeItem(at: directory) }
        var loader: UnpairedSliceLoader!
        let cold = try seconds {
            loader = try UnpairedSliceLoader(mrFiles: [url], ctFiles: [realVolumeURL("example_ct_sm_3mm")],
                                             configuration: configuration, seed: 1, cacheDirectory: directory)
            loader.waitUntilPrepared()
        }
        let first = loader.pair(at: 0)
        var warmLoader: UnpairedSliceLoader!
        let warm = try seconds {
            warmLoader = try UnpairedSliceLoader(mrFiles: [url], ctFiles: [realVolumeURL("example_ct_sm_3mm")],
                                                 configuration: configuration, seed: 1, cacheDirectory: directory)
            warmLoader.waitUntilPrepared()
        }
        #expect(warmLoader.pair(at: 0).mr == first.mr)
        let draws = 1000
        let pairs = seconds { for i in 0..<draws { _ = warmLoader.pair(at: i) } }
        var bytes = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            bytes += (try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(name).path)[.size] as? Int) ?? 0
        }
        print("loader (colin27 MR + 30-slice CT, 256², context 3): cold start (read, prepare, write cache) \(fmt(cold)) s, "
              + "warm start (mmap cache) \(fmt(warm)) s, pair(at:) \(fmt(pairs / Double(draws) * 1e3)) ms, "
              + "cache \(bytes / 1_000_000) MB on disk, epoch length \(warmLoader.epochLength)", to: &err)

        // Throughput of a cold folder: 6 brain volumes (copies under different names) + the CT.
        let folder = directory.appendingPathComponent("folder")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var copies: [URL] = []
        for i in 0..<6 {
            let copy = folder.appendingPathComponent("colin\(i).nii.gz")
            try FileManager.default.copyItem(at: url, to: copy)
            copies.append(copy)
        }
        let folderCache = directory.appendingPathComponent("folder-cache")
        var firstReady = 0.0
        let whole = try seconds {
            let start = DispatchTime.now().uptimeNanoseconds
            let l = try UnpairedSliceLoader(mrFiles: copies, ctFiles: [realVolumeURL("example_ct_sm_3mm")],
                                            configuration: configuration, seed: 1, cacheDirectory: folderCache)
            firstReady = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            l.waitUntilPrepared()
            #expect(l.preparedCounts(.mr).volumes == 6)
        }
        print("cold folder of 6 colin27 copies + CT: init returns after \(fmt(firstReady)) s, all prepared after \(fmt(whole)) s "
              + "(\(fmt(whole / 6)) s per brain volume)", to: &err)

        // Resampling round trip on the real CT: 3 mm → 1.5 mm → 3 mm, inside the body.
        let ct = try NIfTIFile.read(realVolumeURL("example_ct_sm_3mm"))
        var resampled = PreprocessingConfiguration()
        resampled.targetSpacing = 1.5
        let rp = SlicePipeline(configuration: resampled)
        let p = try rp.prepare(ct, as: .ct)
        let r = rp.reassemble(identityNetwork(p), like: p, as: .ct)
        var sum = 0.0, n = 0
        for i in 0..<ct.grid.count where p.bodyMask[i] && ct.voxels[i] >= -1024 {
            sum += Double(abs(r.voxels[i] - ct.voxels[i]))
            n += 1
        }
        print("real CT resampled 3 mm → 1.5 mm → 3 mm (linear both ways): MAE inside the body \(fmt(sum / Double(n))) HU", to: &err)
        #expect(r.affine == ct.affine)
    }

    func fmt(_ x: Double) -> String { String(format: "%.3f", x) }
}

struct FileHandleErrorStream: TextOutputStream {
    mutating func write(_ string: String) { FileHandle.standardError.write(Data(string.utf8)) }
}
