import Foundation
import MR2CTSupport
import NIfTI
import NeuralNetwork
import Reporting
import Training

/// Where a GAN's training patches come from.
public struct PatchSource: Codable, Sendable, Hashable {
    /// A folder of images (PNG, or 2-D NIfTI side × side × channels); for cgan its sub-folders are the classes.
    /// With `labels`: a folder of NIfTI volumes.
    public var images: String
    /// A folder of label maps with the volumes' names: axial patches are cut centred on labelled voxels and the
    /// label value is the class.
    public var labels: String?
    /// With `labels`: at most this many patches per label value (drawn uniformly among the positions that fit).
    public var patchesPerClass: Int = 256

    public init(images: String, labels: String? = nil, patchesPerClass: Int = 256) {
        self.images = images
        self.labels = labels
        self.patchesPerClass = patchesPerClass
    }
}

/// A data problem, one line `"<path>: <reason>"`.
public struct PatchDataError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// The training patches in memory, in the networks' [−1, 1], with their classes.
public final class PatchDataset {
    public let side: Int
    public let channels: Int
    /// count × channels × side × side.
    public let values: [Float]
    /// The class index of each patch (0 for dcgan).
    public let classes: [Int]
    public let classNames: [String]
    public let intensity: IntensityRange
    /// Files left out, with the reason.
    public private(set) var skipped: [(path: String, reason: String)] = []

    public var count: Int { classes.count }

    /// The largest patch set held in memory (4 GiB of floats).
    public static let maximumValues = 1 << 30

    /// Reads the patches. `conditional`: classes from sub-folders (or label values); `intensity`: the map to
    /// [−1, 1], nil for the data's own (PNG 0…255; NIfTI the patches' minimum…maximum).
    public init(source: PatchSource, side: Int, channels: Int, conditional: Bool, intensity: IntensityRange?, seed: UInt64) throws {
        self.side = side
        self.channels = channels
        let root = URL(fileURLWithPath: source.images)
        var raw: [[Float]] = [], rawClasses: [Int] = [], names: [String] = []
        var kind: String?
        var skips: [(path: String, reason: String)] = []
        if let labelPath = source.labels {
            guard channels == 1 else { throw PatchDataError(path: labelPath, reason: "patches cut at label positions have 1 channel (--channels 1)") }
            (raw, rawClasses, names) = try Self.cutPatches(volumes: root, labels: URL(fileURLWithPath: labelPath), side: side,
                                                          perClass: source.patchesPerClass, seed: seed, skipped: &skips)
            kind = "nifti"
        } else {
            let folders: [(URL, String)]
            if conditional {
                let subfolders = try Self.list(root).filter { Self.isDirectory($0) }
                guard subfolders.count >= 2 else {
                    throw PatchDataError(path: root.path, reason: "a conditional GAN needs one sub-folder per class (found \(subfolders.count))")
                }
                folders = subfolders.map { ($0, $0.lastPathComponent) }
            } else {
                folders = [(root, "")]
            }
            for (index, (folder, name)) in folders.enumerated() {
                names.append(name)
                for file in try Self.list(folder) where !Self.isDirectory(file) {
                    let fileKind = file.pathExtension.lowercased() == "png" ? "png" : (NIfTIFile.isVolumeFile(file) ? "nifti" : nil)
                    guard let fileKind else { continue }
                    if let kind, kind != fileKind {
                        throw PatchDataError(path: file.path, reason: "the folder mixes PNG and NIfTI images; use one kind")
                    }
                    kind = fileKind
                    do {
                        raw.append(try fileKind == "png" ? Self.readPNG(file, side: side, channels: channels)
                                                         : Self.readNIfTI(file, side: side, channels: channels))
                        rawClasses.append(index)
                    } catch {
                        skips.append((file.path, "\(error)".replacingOccurrences(of: file.path + ": ", with: "")))
                    }
                }
            }
            if !conditional { names = [] }
        }
        guard !raw.isEmpty else { throw PatchDataError(path: root.path, reason: "no usable \(side)×\(side) images") }
        guard raw.count * channels * side * side <= Self.maximumValues else {
            throw PatchDataError(path: root.path, reason: "\(raw.count) patches of \(channels)×\(side)×\(side) exceed the 4 GiB in-memory limit")
        }
        var range = intensity
        if range == nil {
            if kind == "png" { range = .gray8 } else {
                let lo = raw.map { $0.min() ?? 0 }.min() ?? 0, hi = raw.map { $0.max() ?? 1 }.max() ?? 1
                range = IntensityRange(lower: lo, upper: hi > lo ? hi : lo + 1)
            }
        }
        let map = range!
        self.intensity = map
        values = raw.flatMap { $0.map { map.normalized($0) } }
        classes = rawClasses
        classNames = names
        skipped = skips
    }

    static func list(_ folder: URL) throws -> [URL] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else {
            throw PatchDataError(path: folder.path, reason: "cannot list the folder (missing or not a folder)")
        }
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// An 8-bit gray (1 channel) or RGB (3 channels) PNG of side × side, channel-major, in gray levels.
    static func readPNG(_ url: URL, side: Int, channels: Int) throws -> [Float] {
        let png = try PNGImage.read(url)
        guard png.width == side, png.height == side else {
            throw PatchDataError(path: url.path, reason: "\(png.width)×\(png.height), not \(side)×\(side)")
        }
        guard png.channels == channels else {
            throw PatchDataError(path: url.path, reason: "\(png.channels) channel(s), the run has \(channels)")
        }
        var out = [Float](repeating: 0, count: channels * side * side)
        for p in 0..<(side * side) { for c in 0..<channels { out[c * side * side + p] = Float(png.pixels[p * channels + c]) } }
        return out
    }

    /// A 2-D NIfTI image side × side (× channels as the third dimension), in its own units.
    static func readNIfTI(_ url: URL, side: Int, channels: Int) throws -> [Float] {
        let volume = try NIfTIFile.read(url)
        guard volume.grid == GridSize(side, side, channels) else {
            throw PatchDataError(path: url.path, reason: "grid \(volume.grid), not \(side)×\(side)×\(channels)")
        }
        return volume.voxels
    }

    /// Axial side × side patches centred on labelled voxels of each volume/label-map pair, at most `perClass` per
    /// label value (reservoir sampling, seeded), classes in increasing label order.
    static func cutPatches(volumes: URL, labels: URL, side: Int, perClass: Int, seed: UInt64,
                           skipped: inout [(path: String, reason: String)]) throws -> ([[Float]], [Int], [String]) {
        let files: [URL]
        do { files = try NIfTIFile.volumeFiles(in: volumes) } catch { throw PatchDataError(path: volumes.path, reason: "\(error)") }
        var reservoirs: [Int: [(file: Int, i: Int, j: Int, k: Int)]] = [:], seen: [Int: Int] = [:]
        var random = SeededRandom(seed: seed, stream: 0x7061_7463)
        var loaded: [Int: (Volume, URL)] = [:]
        for (f, file) in files.enumerated() {
            let stem = NIfTIFile.stem(of: file)
            guard let labelFile = (try? NIfTIFile.volumeFiles(in: labels))?.first(where: { NIfTIFile.stem(of: $0) == stem }) else {
                skipped.append((file.path, "no label map named \(stem) in \(labels.path)"))
                continue
            }
            let volume: Volume, map: Volume
            do { volume = try NIfTIFile.read(file); map = try NIfTIFile.read(labelFile) } catch {
                skipped.append((file.path, "\(error)"))
                continue
            }
            guard volume.grid == map.grid else {
                skipped.append((labelFile.path, "grid \(map.grid) differs from the volume's \(volume.grid)"))
                continue
            }
            let g = volume.grid, half = side / 2
            guard g.nx >= side, g.ny >= side else {
                skipped.append((file.path, "slices \(g.nx)×\(g.ny) are smaller than the \(side)×\(side) patches"))
                continue
            }
            loaded[f] = (volume, file)
            for k in 0..<g.nz {
                for j in half...(g.ny - side + half) {
                    for i in half...(g.nx - side + half) {
                        let value = map.voxels[g.index(i, j, k)]
                        guard value > 0, value == value.rounded(), let label = Int(exactly: value) else { continue }
                        let n = seen[label, default: 0]
                        seen[label] = n + 1
                        if n < perClass { reservoirs[label, default: []].append((f, i, j, k)) } else {
                            let r = Int(random.next() % UInt64(n + 1))
                            if r < perClass { reservoirs[label]![r] = (f, i, j, k) }
                        }
                    }
                }
            }
        }
        let labelValues = reservoirs.keys.sorted()
        var patches: [[Float]] = [], classes: [Int] = []
        for (index, label) in labelValues.enumerated() {
            for p in reservoirs[label]! {
                let (volume, _) = loaded[p.file]!
                let g = volume.grid, half = side / 2
                var patch = [Float](repeating: 0, count: side * side)
                for y in 0..<side { for x in 0..<side { patch[y * side + x] = volume.voxels[g.index(p.i - half + x, p.j - half + y, p.k)] } }
                patches.append(patch)
                classes.append(index)
            }
        }
        return (patches, classes, labelValues.map(String.init))
    }
}

/// The batches of a run: each epoch a seeded permutation of the patches, `batchSize` per iteration (the last
/// partial batch of an epoch dropped, as examples/dcgan's DataLoader is not), and the iteration's own noise.
public struct GANTrainingData: TrainingData {
    public let dataset: PatchDataset
    public let configuration: GANConfiguration

    public init(dataset: PatchDataset, configuration: GANConfiguration) {
        self.dataset = dataset
        self.configuration = configuration
    }

    public var epochLength: Int { max(1, dataset.count / configuration.batchSize) }

    /// The patch indices of 0-based iteration `iteration`.
    public func indices(at iteration: Int) -> [Int] {
        let epoch = iteration / epochLength, position = iteration % epochLength, n = dataset.count
        var random = SeededRandom(seed: configuration.seed, stream: 0x6570_6F63_6800 &+ UInt64(epoch))
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(random.next() % UInt64(i + 1))) }
        let b = configuration.batchSize
        return (0..<b).map { order[(position * b + $0) % n] }
    }

    public func batch(at iteration: Int) throws -> GANBatch {
        let b = configuration.batchSize, size = dataset.channels * dataset.side * dataset.side
        let real = Tensor(shape: [b, dataset.channels, dataset.side, dataset.side])
        let picks = indices(at: iteration)
        dataset.values.withUnsafeBufferPointer { source in
            for (slot, index) in picks.enumerated() {
                (real.data.baseAddress! + slot * size).update(from: source.baseAddress! + index * size, count: size)
            }
        }
        let labels = configuration.family == .cgan ? Tensor(shape: [b], values: picks.map { Float(dataset.classes[$0]) }) : nil
        var random = SeededRandom(seed: configuration.seed ^ 0x6E6F_6973_65, stream: UInt64(iteration))
        return GANBatch(real: real, labels: labels, noise: ImageGAN.noise(count: b, nz: configuration.nz, random: &random))
    }
}
