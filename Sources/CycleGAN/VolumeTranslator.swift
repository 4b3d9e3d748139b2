import Foundation
import NIfTI
import NeuralNetwork
import Preprocessing

/// Turns an MR volume into a synthetic CT with an MR→CT generator: the MR is prepared exactly as in training
/// (`SlicePipeline`, `.mr`), the generator runs over its slices in batches, the predictions are reassembled on the
/// MR's grid and mapped back to HU with the CT window (`.ct`), and voxels outside the MR's body mask become air.
/// With several planes the per-plane volumes are averaged in HU (multi-plane fusion); with `mirrorAverage` each
/// slice's prediction is also averaged with the mirrored prediction of its left–right mirror image (test-time
/// augmentation matching training's `--augment` flips), which makes the result exactly mirror-symmetric in the
/// generator: translating a mirrored MR gives the mirrored synthetic CT.
public struct VolumeTranslator {
    public let generator: ResnetGenerator
    public let preprocessing: PreprocessingConfiguration

    /// The value given to voxels outside the body mask (air).
    public static let airHU: Float = -1024

    public init(generator: ResnetGenerator, preprocessing: PreprocessingConfiguration) {
        self.generator = generator
        self.preprocessing = preprocessing
    }

    /// MR volume -> synthetic CT (HU) on exactly the MR's grid (same header geometry); air (-1024) outside the
    /// body mask. `planes` nil means the training plane; several planes are averaged. `progress(done, total)`
    /// is called after each batch of slices, over all planes.
    public func translate(_ mr: Volume, planes: [SlicePlane]? = nil, batchSize: Int = 4, mirrorAverage: Bool = false,
                          progress: ((Int, Int) -> Void)? = nil) throws -> Volume {
        var unique: [SlicePlane] = []
        for plane in planes ?? [preprocessing.plane] where !unique.contains(plane) { unique.append(plane) }
        let planes = unique
        guard !planes.isEmpty else { throw TranslationError("no slice plane given") }
        let batch = max(1, batchSize)
        let channels = generator.configuration.inputChannels
        guard channels == preprocessing.contextSlices else {
            throw TranslationError("the generator takes \(channels) input channels but the preprocessing gives "
                                   + "\(preprocessing.contextSlices) context slices")
        }

        // One body mask for every plane; each plane is prepared only while its slices run.
        let mask = BodyMask.compute(mr)
        let slicesPerPlane = try planes.map { try sliceCount(of: mr, in: $0) }
        let total = slicesPerPlane.reduce(0, +)
        var done = 0
        // The first plane's volume becomes the sum (no zero-filled copy beside it): peak memory matters at 1024³.
        var sum: [Float] = []
        let size = preprocessing.sliceSize
        let pixels = size * size
        // Slices without any body are not run through the network: their voxels become air below anyway.
        let emptySlice = [Float](repeating: -1, count: pixels)

        for plane in planes {
            var configuration = preprocessing
            configuration.plane = plane
            let pipeline = SlicePipeline(configuration: configuration)
            var volume = try pipeline.prepare(mr, as: .mr, bodyMask: mask)
            var slices = [[Float]](repeating: emptySlice, count: volume.sliceCount)
            let work = (0..<volume.sliceCount).filter { volume.bodyFraction(ofSlice: $0) > 0 }
            done += volume.sliceCount - work.count
            var start = 0
            while start < work.count {
                let indices = Array(work[start..<min(start + batch, work.count)])
                let count = indices.count
                // With mirror averaging the batch holds the slices, then their mirror images.
                let input = Tensor(shape: [mirrorAverage ? 2 * count : count, channels, size, size])
                for (n, index) in indices.enumerated() {
                    let slice = volume.inputSlice(index)
                    guard slice.count == channels * pixels else {
                        throw TranslationError("slice \(index) has \(slice.count) values, expected \(channels * pixels)")
                    }
                    slice.withUnsafeBufferPointer { src in
                        let image = channels * pixels
                        _ = UnsafeMutableBufferPointer(rebasing: input.data[(n * image)..<((n + 1) * image)])
                            .update(fromContentsOf: src)
                        if mirrorAverage {
                            Self.mirrorRows(src, into: UnsafeMutableBufferPointer(
                                rebasing: input.data[((count + n) * image)..<((count + n + 1) * image)]), width: size)
                        }
                    }
                }
                let output = generator.infer(input)
                for (n, index) in indices.enumerated() {
                    var prediction = Array(output.data[(n * pixels)..<((n + 1) * pixels)])
                    if mirrorAverage {
                        let mirrored = UnsafeBufferPointer(rebasing: output.data[((count + n) * pixels)..<((count + n + 1) * pixels)])
                        prediction.withUnsafeMutableBufferPointer { p in
                            for r in 0..<size {
                                let row = r * size
                                for c in 0..<size { p[row + c] = 0.5 * (p[row + c] + mirrored[row + size - 1 - c]) }
                            }
                        }
                    }
                    slices[index] = prediction
                }
                start += indices.count
                done += indices.count
                progress?(done, total)
            }
            // The prepared slices are no longer needed: freed before the reassembled volume is allocated.
            volume = volume.releasingSlices()
            let ct = pipeline.reassemble(slices, like: volume, as: .ct)
            guard ct.voxels.count == mr.grid.count else {
                throw TranslationError("reassembled volume has \(ct.voxels.count) voxels, the MR \(mr.grid.count)")
            }
            if sum.isEmpty {
                sum = ct.voxels
                continue
            }
            ct.voxels.withUnsafeBufferPointer { v in
                sum.withUnsafeMutableBufferPointer { s in
                    for i in 0..<s.count { s[i] += v[i] }
                }
            }
        }

        let scale = 1 / Float(planes.count)
        // Averaged and masked in place (air outside the body).
        sum.withUnsafeMutableBufferPointer { out in
            mask.withUnsafeBufferPointer { m in
                for i in 0..<out.count { out[i] = m[i] ? out[i] * scale : Self.airHU }
            }
        }
        var result = mr.replacingVoxels(sum)
        // Geometry (dim, pixdim, qform, sform, codes, units) stays the MR's; the values are plain HU.
        result.header.sclSlope = 1
        result.header.sclInter = 0
        result.header.calMin = 0
        result.header.calMax = 0
        result.header.intentCode = 0
        result.header.descrip = "mr2ct synthetic CT (HU)"
        return result
    }

    /// Copies images of `width`-wide rows with each row reversed (left–right mirror, as training's flips).
    static func mirrorRows(_ source: UnsafeBufferPointer<Float>, into target: UnsafeMutableBufferPointer<Float>,
                           width: Int) {
        precondition(source.count == target.count && source.count % width == 0)
        for row in stride(from: 0, to: source.count, by: width) {
            for c in 0..<width { target[row + c] = source[row + width - 1 - c] }
        }
    }

    /// The number of `plane` slices of `mr` (its canonical RAS grid's extent across the plane).
    func sliceCount(of mr: Volume, in plane: SlicePlane) throws -> Int {
        guard let orientation = CanonicalOrientation(grid: mr.grid, affine: mr.affine) else {
            throw TranslationError("the affine is singular (no orientation)")
        }
        let g = orientation.canonicalGrid
        switch plane {
        case .axial: return g.nz
        case .coronal: return g.ny
        case .sagittal: return g.nx
        }
    }
}

/// Why a volume could not be translated (one line; the caller prefixes the file name).
public struct TranslationError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
