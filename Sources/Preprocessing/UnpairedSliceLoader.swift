import Foundation
import MR2CTSupport
import NIfTI

/// Unpaired random training slices from an MR folder and a CT folder (CycleGAN's unaligned dataset, on volumes).
///
/// Training data is prepared as SynthRAD 2023 prepares it: each volume gets its own body mask (`BodyMask`), so MR
/// and CT folders of different fields of view need no common crop; with the configuration's `ctOutsideBody` /
/// `mrOutsideBody` at `.air` (new runs) the CT outside its body (couch, positioning aids, −3024 / −2000
/// field-of-view padding) becomes −1024 HU and the MR outside its body its background; slices whose body fraction
/// is below `minimumBodyFraction` are not drawn.
///
/// Volumes are read, reoriented, masked, normalised and sliced once (`SlicePipeline`), and every slice of the
/// plane is stored at the network's size in a memory-mapped Int16 cache file (`cacheDirectory`, or a private
/// temporary folder removed when the loader goes away). Cache files are reused when the input file (path, size,
/// modification time), the configuration and the modality match, so a resumed run starts at once.
///
/// Preparation runs in order (MR 0, CT 0, MR 1, CT 1, …) on two background threads, published in that order. `init` returns as soon as one
/// usable volume of each modality is ready; training can start while the rest are prepared (only
/// `epochLength` waits for all of them).
///
/// Determinism: `pair(at: i)` depends only on the seed, `i`, the two file lists (order and contents), the
/// configuration, `augment` and `rampIterations` — never on timing, threads or whether the cache existed.
/// The `j`-th usable volume of a modality (in list order) joins the pool at iteration `j · rampIterations`
/// (0: all volumes from the start; the NIfTI-file initialiser uses 2: two training iterations take about as
/// long as preparing one brain volume); a draw at iteration `i` waits, if it must, until the volumes it may use
/// are prepared. The ramp leans the first `rampIterations` × (number of volumes) iterations slightly towards
/// the first volumes: the price of a schedule that does not depend on timing. Within its pool a draw picks a
/// usable slice uniformly (each usable slice equally likely) with `SeededRandom(seed:stream: i)`,
/// independently for MR and CT, with `augment` mirrors each left–right with probability ½, and with `cropSize`
/// cuts a window of that side at a uniformly random position out of each (the reference's `--preprocess crop`;
/// these draws come after the others, so a cropped loader picks the same slices and flips as an uncropped one).
/// So the same seed and iteration give the same pair, also after a restart.
public final class UnpairedSliceLoader: @unchecked Sendable {
    public let configuration: PreprocessingConfiguration
    public let seed: UInt64
    public let augment: Bool
    /// Iterations between two usable volumes joining the sampling pool (see the type's documentation).
    public let rampIterations: Int
    /// The side of the random square window taken from each training slice; nil = whole slices.
    public let cropSize: Int?
    /// The side of the slices `pair(at:)` returns: `cropSize`, else the configuration's slice size.
    public var outputSize: Int { cropSize ?? configuration.sliceSize }

    private let state: LoaderState
    private let temporaryDirectory: URL?

    /// The designated initialiser: `reader` reads one volume (NIfTIFile.read for files).
    public init(mrFiles: [URL], ctFiles: [URL], configuration: PreprocessingConfiguration, seed: UInt64,
                augment: Bool, cropSize: Int? = nil, cacheDirectory: URL?, rampIterations: Int,
                reader: @escaping @Sendable (URL) throws -> Volume) throws {
        try configuration.validate()
        if let cropSize, let problem = Self.cropProblem(cropSize, sliceSize: configuration.sliceSize) {
            throw PreprocessingError(path: "training loader", reason: problem)
        }
        guard !mrFiles.isEmpty else { throw PreprocessingError(path: "MR training files", reason: "no MR volume given") }
        guard !ctFiles.isEmpty else { throw PreprocessingError(path: "CT training files", reason: "no CT volume given") }
        guard rampIterations >= 0 else {
            throw PreprocessingError(path: "training loader", reason: "rampIterations must be ≥ 0, not \(rampIterations)")
        }
        self.configuration = configuration
        self.seed = seed
        self.augment = augment
        self.rampIterations = rampIterations
        self.cropSize = cropSize
        let directory: URL
        if let cacheDirectory {
            directory = cacheDirectory
            temporaryDirectory = nil
        } else {
            directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("mr2ct-slices-\(getpid())-\(UUID().uuidString)", isDirectory: true)
            temporaryDirectory = directory
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw PreprocessingError(path: directory.path, reason: "cannot create the slice cache folder: \(error.localizedDescription)")
        }
        state = LoaderState(mrFiles: mrFiles, ctFiles: ctFiles, configuration: configuration,
                            cacheDirectory: directory, reader: reader)
        state.start()
        // Fail early when a folder has no usable volume at all.
        for modality in [Modality.mr, .ct] {
            let (usable, finished) = state.waitForUsable(modality, count: 1)
            if usable == 0 && finished {
                state.cancelAndWait()
                if let failure = state.failures.first {
                    if let temporaryDirectory { try? FileManager.default.removeItem(at: temporaryDirectory) }
                    throw PreprocessingError(path: failure.url.path, reason: failure.reason)
                }
                if let temporaryDirectory { try? FileManager.default.removeItem(at: temporaryDirectory) }
                let files = modality == .mr ? mrFiles : ctFiles
                let name = modality == .mr ? "MR" : "CT"
                let folder = files[0].deletingLastPathComponent().path
                let first = state.skipped.first { $0.modality == modality }.map { " (e.g. \($0.url.lastPathComponent): \($0.reason))" } ?? ""
                throw PreprocessingError(path: folder, reason: "none of the \(files.count) \(name) volumes is usable\(first)")
            }
        }
    }

    /// Why `cropSize` cannot be cut from slices of `sliceSize`, or nil: a multiple of 4 (the generator's two
    /// stride-2 stages) from 16 to the slice size.
    public static func cropProblem(_ cropSize: Int, sliceSize: Int) -> String? {
        guard cropSize % 4 == 0, cropSize >= 16, cropSize <= sliceSize else {
            return "the crop size must be a multiple of 4 from 16 to the slice size \(sliceSize), not \(cropSize)"
        }
        return nil
    }

    deinit {
        state.cancelAndWait()
        if let temporaryDirectory { try? FileManager.default.removeItem(at: temporaryDirectory) }
    }

    /// Files that could not be used, with the reason (unreadable, not 3-D, no slice with enough body, cache
    /// not writable). Grows while volumes are prepared in the background; final once `waitUntilPrepared()`.
    public var skippedFiles: [(url: URL, reason: String)] {
        state.skipped.map { ($0.url, $0.reason) }
    }

    /// Volumes that were readable and usable but whose slices could not be written to the cache (a full disk, a
    /// read-only folder): an error for the run, not a skipped file. Final once `waitUntilPrepared()`.
    public var cacheFailures: [CacheWriteFailure] { state.failures }

    /// max(number of usable MR slices, number of usable CT slices): CycleGAN's epoch length. Waits until every
    /// volume is prepared (immediately when the cache is warm).
    public var epochLength: Int {
        state.waitUntilFinished()
        return max(state.usableSliceCount(.mr), state.usableSliceCount(.ct))
    }

    /// Waits until every volume is prepared or skipped.
    public func waitUntilPrepared() { state.waitUntilFinished() }

    /// The histogram of the normalised MR intensities inside the body over every usable MR volume (each as
    /// `IntensityHistogram(mr:configuration:)`), stored with the trained generators so that conversion can tell
    /// an input unlike the training MR. Waits until every volume is prepared.
    public var mrIntensityHistogram: IntensityHistogram {
        state.waitUntilFinished()
        return state.mrHistogram(normalization: configuration.mrNormalization)
    }

    /// Usable volumes and slices prepared so far, per modality.
    public func preparedCounts(_ modality: Modality) -> (volumes: Int, slices: Int) {
        state.counts(modality)
    }

    /// The `iteration`-th pair: a pure function of (seed, iteration), so a resumed run sees the same data.
    /// Each is channels × outputSize × outputSize, normalised.
    public func pair(at iteration: Int) -> (mr: [Float], ct: [Float]) {
        let p = plan(at: iteration)
        return (slices(p.mr, flip: p.flipMR, crop: p.cropMR), slices(p.ct, flip: p.flipCT, crop: p.cropCT))
    }

    /// Where a pair's slices come from (volume file and slice index), for logs and tests.
    public func pairSources(at iteration: Int) -> (mr: (url: URL, slice: Int), ct: (url: URL, slice: Int)) {
        let p = plan(at: iteration)
        return ((p.mr.volume.url, p.mr.slice), (p.ct.volume.url, p.ct.slice))
    }

    /// The top-left pixels (row, column) of the windows `pair(at: iteration)` cuts; nil without cropping.
    public func cropOrigins(at iteration: Int) -> (mr: (row: Int, column: Int), ct: (row: Int, column: Int))? {
        guard cropSize != nil else { return nil }
        let p = plan(at: iteration)
        return ((p.cropMR.row, p.cropMR.column), (p.cropCT.row, p.cropCT.column))
    }

    /// Every random choice of iteration `iteration`, in draw order: MR slice, CT slice, flips (with `augment`),
    /// then window positions (with `cropSize`).
    private func plan(at iteration: Int) -> (mr: (volume: PreparedCacheEntry, slice: Int), ct: (volume: PreparedCacheEntry, slice: Int),
                                             flipMR: Bool, flipCT: Bool, cropMR: SliceCrop, cropCT: SliceCrop) {
        var random = SeededRandom(seed: seed, stream: UInt64(truncatingIfNeeded: iteration))
        let poolSize = rampIterations == 0 ? Int.max : max(0, iteration) / rampIterations + 1
        let mrPick = draw(.mr, poolSize: poolSize, random: &random)
        let ctPick = draw(.ct, poolSize: poolSize, random: &random)
        let flipMR = augment && random.next() >> 63 == 1
        let flipCT = augment && random.next() >> 63 == 1
        let size = configuration.sliceSize
        var cropMR = SliceCrop(row: 0, column: 0, size: size), cropCT = cropMR
        if let cropSize {
            let span = UInt64(size - cropSize + 1)
            func position() -> Int { Int(random.next().multipliedFullWidth(by: span).high) }
            cropMR = SliceCrop(row: position(), column: position(), size: cropSize)
            cropCT = SliceCrop(row: position(), column: position(), size: cropSize)
        }
        return (mrPick, ctPick, flipMR, flipCT, cropMR, cropCT)
    }

    private func draw(_ modality: Modality, poolSize: Int, random: inout SeededRandom) -> (volume: PreparedCacheEntry, slice: Int) {
        let pool = state.pool(modality, size: poolSize)
        let total = pool.prefix.last ?? 0
        let u = Int(random.next().multipliedFullWidth(by: UInt64(total)).high)
        // The last volume whose first usable slice is ≤ u.
        var lo = 0, hi = pool.entries.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if pool.prefix[mid] <= u { lo = mid } else { hi = mid - 1 }
        }
        let entry = pool.entries[lo]
        return (entry, entry.usableSlices[u - pool.prefix[lo]])
    }

    private func slices(_ pick: (volume: PreparedCacheEntry, slice: Int), flip: Bool, crop: SliceCrop) -> [Float] {
        let channels = configuration.contextSlices, plane = crop.size * crop.size
        var out = [Float](repeating: 0, count: channels * plane)
        out.withUnsafeMutableBufferPointer { o in
            for c in 0..<channels {
                pick.volume.cache.read(slice: pick.slice + c - channels / 2,
                                       into: UnsafeMutableBufferPointer(rebasing: o[(c * plane)..<((c + 1) * plane)]),
                                       flip: flip, crop: crop)
            }
        }
        return out
    }
}

/// One usable prepared volume.
final class PreparedCacheEntry: @unchecked Sendable {
    let url: URL
    let cache: SliceCacheFile
    let usableSlices: [Int]
    /// MR volumes: the normalised body-intensity histogram.
    let histogram: IntensityHistogram?
    init(url: URL, cache: SliceCacheFile, usableSlices: [Int], histogram: IntensityHistogram?) {
        self.url = url
        self.cache = cache
        self.usableSlices = usableSlices
        self.histogram = histogram
    }
}

/// The loader's shared state: the background preparation and the prepared volumes, under one condition lock.
final class LoaderState: @unchecked Sendable {
    struct Skipped { var modality: Modality; var url: URL; var reason: String }

    private let condition = NSCondition()
    private let mrFiles: [URL], ctFiles: [URL]
    private let configuration: PreprocessingConfiguration
    private let cacheDirectory: URL
    private let reader: @Sendable (URL) throws -> Volume
    private var entries: [Modality: [PreparedCacheEntry]] = [.mr: [], .ct: []]
    private var prefix: [Modality: [Int]] = [.mr: [0], .ct: [0]]    // usable slices before each entry
    private var done: [Modality: Bool] = [.mr: false, .ct: false]
    private var skippedList: [Skipped] = []
    private var cacheFailures: [CacheWriteFailure] = []
    private var cancelled = false
    private var workerFinished = false
    // Work in list order: claimed by up to two threads, published strictly in order.
    private let order: [(modality: Modality, url: URL)]
    private var remaining: [Modality: Int]
    private var nextClaim = 0
    private var publishCursor = 0
    private var finishedResults: [Int: Result<PreparedCacheEntry, any Error>] = [:]
    private var activeWorkers = 0

    init(mrFiles: [URL], ctFiles: [URL], configuration: PreprocessingConfiguration, cacheDirectory: URL,
         reader: @escaping @Sendable (URL) throws -> Volume) {
        self.mrFiles = mrFiles
        self.ctFiles = ctFiles
        self.configuration = configuration
        self.cacheDirectory = cacheDirectory
        self.reader = reader
        var order: [(modality: Modality, url: URL)] = []
        for i in 0..<max(mrFiles.count, ctFiles.count) {
            if i < mrFiles.count { order.append((.mr, mrFiles[i])) }
            if i < ctFiles.count { order.append((.ct, ctFiles[i])) }
        }
        self.order = order
        remaining = [.mr: mrFiles.count, .ct: ctFiles.count]
    }

    /// Starts `threads` preparation threads (two on a multi-core machine: preparing is mostly single-threaded
    /// work, and results are published in list order whichever thread finishes first).
    func start(threads: Int = min(2, max(1, ProcessInfo.processInfo.activeProcessorCount))) {
        condition.lock()
        activeWorkers = threads
        condition.unlock()
        for t in 0..<threads {
            let thread = Thread { [self] in work() }
            thread.name = "mr2ct slice preparation \(t)"
            thread.start()
        }
    }

    private func work() {
        while true {
            condition.lock()
            if cancelled || nextClaim >= order.count {
                activeWorkers -= 1
                if activeWorkers == 0 {
                    done[.mr] = true
                    done[.ct] = true
                    workerFinished = true
                }
                condition.broadcast()
                condition.unlock()
                return
            }
            let index = nextClaim
            nextClaim += 1
            condition.unlock()
            let (modality, url) = order[index]
            let result = Result { try prepare(url, as: modality) }
            condition.lock()
            finishedResults[index] = result
            while let ready = finishedResults.removeValue(forKey: publishCursor) {
                publish(ready, modality: order[publishCursor].modality, url: order[publishCursor].url)
                publishCursor += 1
            }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Adds a finished volume to its modality's list (under the lock).
    private func publish(_ result: Result<PreparedCacheEntry, any Error>, modality: Modality, url: URL) {
        switch result {
        case let .success(entry):
            entries[modality]!.append(entry)
            prefix[modality]!.append(prefix[modality]!.last! + entry.usableSlices.count)
        case let .failure(failure as CacheWriteFailure):
            // A usable volume that could not be cached is not "skipped": training would silently use less data.
            cacheFailures.append(failure)
        case let .failure(error):
            // One line, without repeating the file's path (the report names it).
            var reason = String(describing: error).replacingNewlines()
            if reason.hasPrefix(url.path + ": ") { reason.removeFirst(url.path.count + 2) }
            skippedList.append(Skipped(modality: modality, url: url, reason: reason))
        }
        remaining[modality]! -= 1
        if remaining[modality]! == 0 { done[modality] = true }
    }

    /// Reads, prepares and caches one volume (or maps its existing cache file).
    private func prepare(_ url: URL, as modality: Modality) throws -> PreparedCacheEntry {
        let key = cacheKey(url, modality)
        let file = cacheDirectory.appendingPathComponent(
            "\(fileStem(url))-\(modality.rawValue)-\(String(fnv1a(key), radix: 16)).slices")
        var cache = SliceCacheFile(url: file, key: key)
        // MR: the body histogram, kept beside the cache file (same key in its name).
        let histogramFile = file.appendingPathExtension("histogram.json")
        var histogram: IntensityHistogram?
        if modality == .mr, cache != nil, let data = try? Data(contentsOf: histogramFile) {
            histogram = IntensityHistogram(json: String(decoding: data, as: UTF8.self))
        }
        if cache == nil || (modality == .mr && histogram == nil) {
            let volume = try reader(url)
            let prepared: PreparedVolume
            do {
                prepared = try SlicePipeline(configuration: configuration).prepare(volume, as: modality)
            } catch let error as PreprocessingError {
                throw PreprocessingError(path: url.path, reason: error.reason)
            }
            if modality == .mr {
                let h = IntensityHistogram(voxels: volume.voxels, mask: prepared.bodyMask, rowLength: volume.grid.nx,
                                           map: prepared.intensityMap, normalization: configuration.mrNormalization)
                histogram = h
                try? AtomicFile.write(Data(h.json.utf8), to: histogramFile)
            }
            if cache == nil {
                do {
                    try SliceCacheFile.write(prepared, key: key, to: file)
                } catch {
                    throw CacheWriteFailure(url: url, reason: "cannot write the slice cache \(file.path): \(error)")
                }
                cache = SliceCacheFile(url: file, key: key)
            }
        }
        guard let cache else { throw PreprocessingError(path: url.path, reason: "cannot map the slice cache \(file.path)") }
        let usable = (0..<cache.sliceCount).filter { cache.bodyFractions[$0] >= configuration.minimumBodyFraction && cache.bodyFractions[$0] > 0 }
        guard !usable.isEmpty else {
            let best = cache.bodyFractions.max() ?? 0
            throw PreprocessingError(path: url.path, reason: String(format: "no slice has a body fraction of at least %.3g (largest %.3g)",
                                                                   configuration.minimumBodyFraction, best))
        }
        return PreparedCacheEntry(url: url, cache: cache, usableSlices: usable, histogram: histogram)
    }

    /// Identifies what a cache file was made from: format version, modality, configuration, and the input
    /// file's absolute path, size and modification time.
    private func cacheKey(_ url: URL, _ modality: Modality) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // What the cached slices depend on: not the context size or the body-fraction limit (applied on load).
        var keyed = configuration
        keyed.contextSlices = 1
        keyed.minimumBodyFraction = 0
        // Nor on the other modality's intensity parameters.
        switch modality {
        case .mr:
            keyed.ctWindow = PreprocessingConfiguration().ctWindow
            keyed.ctMapping = .window
            keyed.ctOutsideBody = PreprocessingConfiguration().ctOutsideBody
        case .ct:
            keyed.mrNormalization = PreprocessingConfiguration().mrNormalization
            keyed.mrOutsideBody = PreprocessingConfiguration().mrOutsideBody
        }
        let json = (try? encoder.encode(keyed)).map { String(decoding: $0, as: UTF8.self) } ?? "\(configuration)"
        var st = stat()
        let path = url.standardizedFileURL.path
        let found = stat(path, &st) == 0
        #if canImport(Darwin)
        let modified = (st.st_mtimespec.tv_sec, st.st_mtimespec.tv_nsec)
        #else
        let modified = (st.st_mtim.tv_sec, st.st_mtim.tv_nsec)
        #endif
        let fileStamp = found ? "\(st.st_size)|\(modified.0).\(modified.1)" : "unstat"
        return "v\(SliceCacheFile.version)|mask\(BodyMask.revision)|\(modality.rawValue)|\(json)|\(path)|\(fileStamp)"
    }

    // MARK: Queries (all under the lock)

    func waitForUsable(_ modality: Modality, count: Int) -> (usable: Int, finished: Bool) {
        condition.lock()
        defer { condition.unlock() }
        while entries[modality]!.count < count && !done[modality]! { condition.wait() }
        return (entries[modality]!.count, done[modality]!)
    }

    /// The first `size` usable volumes (fewer when the folder has fewer), waiting until they are prepared.
    func pool(_ modality: Modality, size: Int) -> (entries: ArraySlice<PreparedCacheEntry>, prefix: ArraySlice<Int>) {
        condition.lock()
        defer { condition.unlock() }
        while entries[modality]!.count < size && !done[modality]! { condition.wait() }
        let n = min(size, entries[modality]!.count)
        return (entries[modality]![0..<n], prefix[modality]![0...n])
    }

    func waitUntilFinished() {
        condition.lock()
        while !workerFinished { condition.wait() }
        condition.unlock()
    }

    func cancelAndWait() {
        condition.lock()
        cancelled = true
        while !workerFinished { condition.wait() }
        condition.unlock()
    }

    func usableSliceCount(_ modality: Modality) -> Int {
        condition.lock()
        defer { condition.unlock() }
        return prefix[modality]!.last!
    }

    func mrHistogram(normalization: MRNormalization) -> IntensityHistogram {
        condition.lock()
        defer { condition.unlock() }
        var total = IntensityHistogram(normalization: normalization)
        for entry in entries[.mr]! { if let h = entry.histogram { total.add(h) } }
        return total
    }

    func counts(_ modality: Modality) -> (volumes: Int, slices: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (entries[modality]!.count, prefix[modality]!.last!)
    }

    var skipped: [Skipped] {
        condition.lock()
        defer { condition.unlock() }
        return skippedList
    }

    var failures: [CacheWriteFailure] {
        condition.lock()
        defer { condition.unlock() }
        return cacheFailures
    }
}

/// A volume whose prepared slices could not be written to the slice cache: `"<file>: <reason>"`.
public struct CacheWriteFailure: Error, CustomStringConvertible, Sendable {
    public var url: URL
    public var reason: String
    public var description: String { "\(url.path): \(reason)" }
}

/// FNV-1a, 64 bits: a stable file-name hash (Swift's Hasher is seeded per process).
func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01b3
    }
    return h
}

/// The file name without its volume extension (.nii, .nii.gz, .hdr, .hdr.gz), for readable cache names.
func fileStem(_ url: URL) -> String {
    var name = url.lastPathComponent
    for ext in [".gz", ".nii", ".hdr"] where name.lowercased().hasSuffix(ext) { name.removeLast(ext.count) }
    return name.isEmpty ? "volume" : name
}
