import Foundation
import CycleGAN
import SyntheticCT
import MR2CTSupport
import NIfTI

/// Peak memory of `mr2ct info` and `mr2ct convert` on one volume, measured in this process as the high-water mark
/// of resident memory (`ResourceUsage.peakResidentBytes`, so the figures include the process's own baseline and, for
/// convert, the model): `info` first, then the conversion, each peak read right after its step. The documented
/// bound (README, "Reliability"): at most 3 × the float32 volume (12 bytes per voxel) plus the model's working set.
public struct MemoryBenchmark: Sendable {
    public var voxels: Int
    public var baselineBytes: Int
    public var infoPeakBytes: Int
    public var convertPeakBytes: Int?

    /// Bytes of peak resident memory per voxel of the volume.
    public var infoBytesPerVoxel: Double { Double(infoPeakBytes) / Double(max(1, voxels)) }
    public var convertBytesPerVoxel: Double? { convertPeakBytes.map { Double($0) / Double(max(1, voxels)) } }

    /// Runs `info`'s summary of `file`, then (with `models`) its conversion into a temporary folder, which is removed.
    public static func run(_ file: URL, models: [SyntheticCTModel], readOptions: NIfTIReadOptions = .init()) throws -> MemoryBenchmark {
        let baseline = ResourceUsage.peakResidentBytes()
        let header = try NIfTIFile.readHeader(file)
        let voxels = header.dim[1] * header.dim[2] * header.dim[3]
        _ = try VolumeSummary.of(file, volumeIndex: readOptions.volumeIndex, maxVoxels: readOptions.maxVoxels)
        let info = ResourceUsage.peakResidentBytes()
        var convert: Int?
        if !models.isEmpty {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mr2ct-memory-\(getpid())-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            var options = ConversionOptions(outputDirectory: folder)
            options.readOptions = readOptions
            options.showProgress = false
            let planned = ConversionRunner.plan([ConversionItem(path: file.standardizedFileURL.path)], options: options).plan
            let result = ConversionRunner(models: models, options: options).convert(planned[0])
            if let error = result.error { throw MemoryBenchmarkError(reason: error) }
            convert = ResourceUsage.peakResidentBytes()
        }
        return MemoryBenchmark(voxels: voxels, baselineBytes: baseline, infoPeakBytes: info, convertPeakBytes: convert)
    }

    /// One JSON line: voxels, baseline_mb, info_peak_rss_mb, info_bytes_per_voxel, convert_peak_rss_mb,
    /// convert_bytes_per_voxel (null without a model).
    public var jsonLine: String {
        func mb(_ bytes: Int) -> String { JSONText.number(Double(bytes) / 1_048_576, digits: 1) }
        return JSONText.object([
            ("voxels", "\(voxels)"), ("baseline_mb", mb(baselineBytes)),
            ("info_peak_rss_mb", mb(infoPeakBytes)), ("info_bytes_per_voxel", JSONText.number(infoBytesPerVoxel, digits: 2)),
            ("convert_peak_rss_mb", convertPeakBytes.map(mb) ?? "null"),
            ("convert_bytes_per_voxel", convertBytesPerVoxel.map { JSONText.number($0, digits: 2) } ?? "null"),
        ])
    }
}

/// The conversion inside a memory benchmark failed (its one-line reason).
public struct MemoryBenchmarkError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { reason }
}
