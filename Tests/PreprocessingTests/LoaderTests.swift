import Foundation
import NIfTI
@testable import Preprocessing
import Testing
import TestSupport

/// A small "head": an ellipsoid filling the middle axial slices only, so the end slices have no body.
func smallHead(seed: UInt64, nz: Int = 10, tissue: ClosedRange<Float> = 200...400, background: Float = 0) -> Volume {
    let g = GridSize(22, 26, nz)
    var voxels = [Float](repeating: background, count: g.count)
    for k in 0..<g.nz {
        for j in 0..<g.ny {
            for i in 0..<g.nx {
                let p = SIMD3<Double>(Double(i) - 10.5, Double(j) - 12.5, Double(k) - Double(nz - 1) / 2)
                let radii = SIMD3<Double>(8, 10, Double(nz) / 2 - 1.5)
                let d: SIMD3<Double> = p / radii
                if (d * d).sum() <= 1 { voxels[g.index(i, j, k)] = hashValue(g.index(i, j, k), seed: seed, tissue.lowerBound, tissue.upperBound) }
            }
        }
    }
    return Volume(grid: g, voxels: voxels, affine: .scaling(SIMD3(1, 1, 2)))
}

/// In-memory "files": URLs whose names select a volume; "broken" ones fail to read.
struct FakeFiles {
    var volumes: [String: Volume] = [:]
    var reader: @Sendable (URL) throws -> Volume {
        let volumes = self.volumes
        return { url in
            guard let v = volumes[url.lastPathComponent] else {
                throw PreprocessingError(path: url.path, reason: "not a NIfTI file (test)")
            }
            return v
        }
    }
}

func loaderConfiguration() -> PreprocessingConfiguration {
    var c = PreprocessingConfiguration()
    c.sliceSize = 32
    c.contextSlices = 3
    c.minimumBodyFraction = 0.05
    return c
}

@Suite struct LoaderTests {
    let files: FakeFiles = {
        var f = FakeFiles()
        f.volumes["mr0.nii"] = smallHead(seed: 1)
        f.volumes["mr1.nii.gz"] = smallHead(seed: 2, nz: 12)
        f.volumes["mr2.nii"] = smallHead(seed: 3, nz: 8)
        f.volumes["ct0.nii.gz"] = smallHead(seed: 4, tissue: -100...1500, background: -1000)
        f.volumes["ct1.nii"] = smallHead(seed: 5, nz: 14, tissue: -100...1500, background: -1000)
        f.volumes["empty.nii"] = Volume(grid: GridSize(8, 8, 4), voxels: [Float](repeating: 5, count: 256), affine: .identity)
        f.volumes["air.nii"] = Volume(grid: GridSize(8, 8, 4), voxels: [Float](repeating: -1000, count: 256), affine: .identity)
        return f
    }()
    let dir = URL(fileURLWithPath: "/data")
    var mrURLs: [URL] { ["mr0.nii", "broken.nii", "mr1.nii.gz", "empty.nii", "mr2.nii"].map { dir.appendingPathComponent($0) } }
    var ctURLs: [URL] { ["ct0.nii.gz", "ct1.nii"].map { dir.appendingPathComponent($0) } }

    func makeLoader(seed: UInt64 = 42, augment: Bool = false, crop: Int? = nil, cache: URL? = nil, ramp: Int = 3,
                    configuration: PreprocessingConfiguration = loaderConfiguration()) throws -> UnpairedSliceLoader {
        try UnpairedSliceLoader(mrFiles: mrURLs, ctFiles: ctURLs, configuration: configuration, seed: seed,
                                augment: augment, cropSize: crop, cacheDirectory: cache, rampIterations: ramp, reader: files.reader)
    }

    /// The `size`² window at (row, column) of each channel of a channels × 32 × 32 slice stack.
    static func window(_ slices: [Float], channels: Int, row: Int, column: Int, size: Int) -> [Float] {
        (0..<channels).flatMap { c in
            (0..<size).flatMap { r in (0..<size).map { slices[c * 32 * 32 + (row + r) * 32 + column + $0] } }
        }
    }

    /// A cropping loader picks the same slices and flips as a whole-slice one with the same seed and cuts the
    /// window it reports, at positions spread over the whole slice.
    @Test(arguments: [false, true])
    func cropsAreWindowsOfTheSameSlicesAtRandomPositions(augment: Bool) throws {
        let whole = try makeLoader(augment: augment), cropped = try makeLoader(augment: augment, crop: 20)
        #expect(whole.outputSize == 32 && cropped.outputSize == 20 && whole.cropOrigins(at: 0) == nil)
        var rows = Set<Int>(), columns = Set<Int>()
        for i in 0..<60 {
            let full = whole.pair(at: i), part = cropped.pair(at: i)
            let a = whole.pairSources(at: i), b = cropped.pairSources(at: i)
            #expect(a.mr.url == b.mr.url && a.mr.slice == b.mr.slice && a.ct.url == b.ct.url && a.ct.slice == b.ct.slice)
            let origins = try #require(cropped.cropOrigins(at: i))
            #expect(part.mr.count == 3 * 20 * 20 && part.ct.count == 3 * 20 * 20)
            #expect(part.mr == Self.window(full.mr, channels: 3, row: origins.mr.row, column: origins.mr.column, size: 20), "iteration \(i)")
            #expect(part.ct == Self.window(full.ct, channels: 3, row: origins.ct.row, column: origins.ct.column, size: 20), "iteration \(i)")
            for o in [origins.mr, origins.ct] {
                #expect((0...12).contains(o.row) && (0...12).contains(o.column))
                rows.insert(o.row); columns.insert(o.column)
            }
        }
        #expect(rows.count >= 10 && rows.contains(0) && rows.contains(12))
        #expect(columns.count >= 10 && columns.contains(0) && columns.contains(12))
        for bad in [18, 36, 8] {
            #expect(throws: PreprocessingError.self) { try makeLoader(crop: bad) }
        }
        #expect(UnpairedSliceLoader.cropProblem(32, sliceSize: 32) == nil)
    }

    /// Same seed → same pairs, in any call order, from a fresh or a warm cache (a restart); another seed → others.
    @Test func deterministicForASeed() throws {
        let cache = try TestSupport.makeTemporaryDirectory("prep-cache")
        defer { try? FileManager.default.removeItem(at: cache) }
        let a = try makeLoader(augment: true, cache: cache)
        let forward = (0..<40).map { a.pair(at: $0) }
        let b = try makeLoader(augment: true, cache: cache)       // warm cache, like a resumed run
        let c = try makeLoader(augment: true)                     // private cache
        for i in stride(from: 39, through: 0, by: -1) {
            let pb = b.pair(at: i), pc = c.pair(at: i)
            #expect(pb.mr == forward[i].mr && pb.ct == forward[i].ct, "iteration \(i)")
            #expect(pc.mr == forward[i].mr && pc.ct == forward[i].ct, "iteration \(i)")
        }
        let other = try makeLoader(seed: 43, augment: true, cache: cache)
        let differing = (0..<40).filter { other.pair(at: $0).mr != forward[$0].mr }.count
        #expect(differing > 20)
    }

    /// Unreadable volumes and volumes without body are skipped and reported; the rest are used.
    @Test func skipsAndReportsUnusableVolumes() throws {
        let loader = try makeLoader()
        loader.waitUntilPrepared()
        let skipped = loader.skippedFiles
        #expect(skipped.map(\.url.lastPathComponent) == ["broken.nii", "empty.nii"])
        #expect(skipped[0].reason.contains("not a NIfTI file"))
        #expect(skipped[1].reason.contains("body fraction"))
        #expect(loader.preparedCounts(.mr).volumes == 3 && loader.preparedCounts(.ct).volumes == 2)
    }

    /// No usable volume in a folder: a one-line error naming the folder.
    @Test func throwsWhenAFolderHasNothingUsable() throws {
        // As CT a constant 5 HU volume would be all body (water filling the field of view): air only has none.
        let bad = ["broken.nii", "air.nii"].map { dir.appendingPathComponent($0) }
        do {
            _ = try UnpairedSliceLoader(mrFiles: mrURLs, ctFiles: bad, configuration: loaderConfiguration(), seed: 1,
                                        augment: false, cacheDirectory: nil, rampIterations: 0, reader: files.reader)
            Issue.record("expected an error")
        } catch let error as PreprocessingError {
            #expect(error.path == "/data" && error.description.contains("none of the 2 CT volumes is usable"))
            #expect(!error.description.contains("\n"))
        }
    }

    /// Every drawn slice has enough body; its channels are the slice and its neighbours (edges replicated)
    /// exactly as SlicePipeline makes them, up to the Int16 cache's quantisation; flips mirror left–right;
    /// the epoch length is the larger number of usable slices.
    @Test func pairsAreTheUsableSlicesOfThePipeline() throws {
        let configuration = loaderConfiguration()
        let pipeline = SlicePipeline(configuration: configuration)
        var prepared: [String: PreparedVolume] = [:]
        var usable: [Modality: Int] = [.mr: 0, .ct: 0]
        for (name, volume) in files.volumes where name != "empty.nii" {
            let modality: Modality = name.hasPrefix("ct") ? .ct : .mr
            let p = try pipeline.prepare(volume, as: modality)
            prepared[name] = p
            usable[modality]! += (0..<p.sliceCount).filter { p.bodyFraction(ofSlice: $0) >= configuration.minimumBodyFraction }.count
        }
        for augment in [false, true] {
            let loader = try makeLoader(augment: augment)
            #expect(loader.epochLength == max(usable[.mr]!, usable[.ct]!))
            var flipped = 0
            for i in 0..<60 {
                let sources = loader.pairSources(at: i)
                let pair = loader.pair(at: i)
                for (source, got) in [(sources.mr, pair.mr), (sources.ct, pair.ct)] {
                    let p = try #require(prepared[source.url.lastPathComponent])
                    #expect(p.bodyFraction(ofSlice: source.slice) >= configuration.minimumBodyFraction)
                    let expected = p.inputSlice(source.slice)
                    let mirrored = mirror(expected, size: 32)
                    // Quantisation step: value range / 65535.
                    let tolerance: Float = 2.0 / 65535 + 1e-6
                    let plain = maxAbsDifference(got, expected) <= tolerance
                    let flip = maxAbsDifference(got, mirrored) <= tolerance
                    #expect(plain || (augment && flip), "iteration \(i) \(source)")
                    if augment && flip && !plain { flipped += 1 }
                }
            }
            if augment { #expect(flipped > 30 && flipped < 90) } else { #expect(flipped == 0) }
        }
    }

    /// Usable volume j joins the pool at iteration j · rampIterations; rampIterations 0 uses all at once.
    @Test func rampAddsVolumesInOrder() throws {
        let loader = try makeLoader(ramp: 5)
        let order = ["mr0.nii", "mr1.nii.gz", "mr2.nii"]
        var seen = Set<String>()
        for i in 0..<400 {
            let name = loader.pairSources(at: i).mr.url.lastPathComponent
            let allowed = min(i / 5 + 1, 3)
            #expect(order.prefix(allowed).contains(name), "iteration \(i): \(name)")
            seen.insert(name)
        }
        #expect(seen.count == 3)
        let all = try makeLoader(ramp: 0)
        let early = Set((0..<60).map { all.pairSources(at: $0).mr.url.lastPathComponent })
        #expect(early.count == 3)
    }

    /// Volumes finishing out of order on the two preparation threads are still published in list order: a slow
    /// first MR does not change which volumes the first iterations draw from.
    @Test func slowFirstVolumeKeepsTheOrder() throws {
        let volumes = files.volumes
        let slowReader: @Sendable (URL) throws -> Volume = { url in
            if url.lastPathComponent == "mr0.nii" { usleep(300_000) }
            guard let v = volumes[url.lastPathComponent] else { throw PreprocessingError(path: url.path, reason: "missing") }
            return v
        }
        let slow = try UnpairedSliceLoader(mrFiles: mrURLs, ctFiles: ctURLs, configuration: loaderConfiguration(), seed: 42,
                                           augment: false, cacheDirectory: nil, rampIterations: 3, reader: slowReader)
        let reference = try makeLoader()
        for i in 0..<30 {
            #expect(slow.pairSources(at: i).mr.url == reference.pairSources(at: i).mr.url, "iteration \(i)")
            #expect(slow.pair(at: i).mr == reference.pair(at: i).mr, "iteration \(i)")
        }
        #expect(slow.pairSources(at: 0).mr.url.lastPathComponent == "mr0.nii")
        slow.waitUntilPrepared()
        #expect(slow.skippedFiles.map(\.url.lastPathComponent) == ["broken.nii", "empty.nii"])
    }

    /// Cache files are written once and reused for the same inputs and configuration; another configuration
    /// makes new ones; a private cache folder disappears with its loader.
    @Test func cacheIsReusedAndKeyedByConfiguration() throws {
        let cache = try TestSupport.makeTemporaryDirectory("prep-cache")
        defer { try? FileManager.default.removeItem(at: cache) }
        func listing() throws -> [String: Date] {
            var out: [String: Date] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: cache.path) {
                let attributes = try FileManager.default.attributesOfItem(atPath: cache.appendingPathComponent(name).path)
                out[name] = attributes[.modificationDate] as? Date
            }
            return out
        }
        // The slice caches; each MR cache has its body histogram beside it (`<cache>.histogram.json`).
        func slicesListing() throws -> [String: Date] { try listing().filter { $0.key.hasSuffix(".slices") } }
        try makeLoader(cache: cache).waitUntilPrepared()
        let first = try slicesListing()
        #expect(first.count == 6)    // 4 usable + empty (cached, then found bodyless); broken has none
        let sidecars = try listing().keys.filter { !$0.hasSuffix(".slices") }
        #expect(Set(sidecars) == Set(first.keys.filter { $0.contains("-mr-") }.map { $0 + ".histogram.json" }))
        var otherContext = loaderConfiguration()
        otherContext.contextSlices = 5
        otherContext.minimumBodyFraction = 0.2
        try makeLoader(cache: cache, configuration: otherContext).waitUntilPrepared()
        #expect(try slicesListing() == first)
        var otherWindow = loaderConfiguration()
        otherWindow.ctWindow = [-1000, 2000]
        try makeLoader(cache: cache, configuration: otherWindow).waitUntilPrepared()
        let after = try slicesListing()
        // Only the two CT volumes depend on the window.
        #expect(after.count == 8 && Set(first.keys).isSubset(of: after.keys))
        #expect(after.keys.filter { !first.keys.contains($0) }.allSatisfy { $0.contains("-ct-") })
        var privateDirectory: URL?
        do {
            let loader = try makeLoader()
            loader.waitUntilPrepared()
            privateDirectory = Mirror(reflecting: loader).children.first { $0.label == "temporaryDirectory" }?.value as? URL
            #expect(privateDirectory.map { FileManager.default.fileExists(atPath: $0.path) } == true)
        }
        #expect(privateDirectory.map { FileManager.default.fileExists(atPath: $0.path) } == false)
    }
}

func mirror(_ image: [Float], size: Int) -> [Float] {
    var out = image
    let planes = image.count / (size * size)
    for p in 0..<planes {
        for r in 0..<size {
            for c in 0..<size { out[p * size * size + r * size + c] = image[p * size * size + r * size + size - 1 - c] }
        }
    }
    return out
}
