import CycleGAN
import Foundation
import NIfTI
import NeuralNetwork
import Preprocessing
import Networks

/// Turns an MR volume into a synthetic CT with an MR→CT generator: the MR is prepared as in training
/// (`SlicePipeline`, `.mr`: canonical orientation, body mask, intensity map, resampling to the model's spacing),
/// the generator runs over its slices in batches, the predictions are reassembled on the MR's grid and mapped back
/// to HU with the CT window (`.ct`), and voxels outside the body mask become air.
///
/// Conversion runs on the **whole slice** (`SliceField.wholeSlice`): at the model's spacing each slice is padded
/// with the MR background to at least the training `sliceSize` and to a multiple of 4, never cropped, so a body
/// larger than the training field is predicted everywhere (training still pads/crops to `sliceSize`). A slice
/// no larger than the training field gets exactly the training image. Slices are never tiled: instance
/// normalisation works on the whole image, so tiles would not give the whole-slice result; instead a generator
/// call holds as many slices as fit `callMemoryBudget` and `callPixelLimit` (at least one; shared by the
/// `concurrentCalls` calls run at once, one per core), and a slice needing more than `sliceMemoryLimit` is refused
/// (see `memoryEstimate`).
///
/// With several planes the per-plane volumes are averaged in HU (multi-plane fusion); with `mirrorAverage` each
/// slice is also predicted mirrored left–right (test-time augmentation matching training's `--augment` flips)
/// and the mirrored prediction, mirrored back, averaged in, which makes the result exactly mirror-symmetric in the
/// generator: translating a mirrored MR gives the mirrored synthetic CT. Every prediction (plane × mirror) enters
/// a `PredictionStack` on its own, so the spread between them is available as an uncertainty map.
public struct VolumeTranslator {
    /// The MR→CT generator: a CycleGAN's ResNet generator or a pix2pix U-Net (whose image sides must be a
    /// multiple of 2^downsamplings: slices are then padded around with the MR background and the prediction cut
    /// back, see `infer(_:background:)`).
    public let generator: any SliceTranslationNetwork
    public let preprocessing: PreprocessingConfiguration

    /// The value given to voxels outside the body mask (air).
    public static let airHU: Float = -1024
    /// Bytes of activations one generator call may use (slices are batched up to it; a larger slice runs alone).
    public static let callMemoryBudget = 1 << 30
    /// A slice whose estimated activations exceed this is refused (one clear error instead of exhausting memory).
    public static let sliceMemoryLimit = 8 << 30
    /// Pixels one generator call holds at most (whole slices, at least one): beyond this a call is no faster per
    /// slice, only larger. Measured on the 256² ngf-64 generator (2 threads, 20 slices of the whole-volume benchmark,
    /// 5 alternating runs): one 256² slice per call against two, median 6.63 against 6.96 s (6.60–9.00 against
    /// 6.47–6.99), 540 against 650 MB peak.
    public static let callPixelLimit = 1 << 16
    /// Generator calls run at once (one per core, at most two: `ComputeThreads.map`); 1 with one compute thread.
    public static var concurrentCalls: Int { min(2, ComputeThreads.count) }

    /// Slices one generator call holds: its share of `batchSize` (the slices in flight, shared by `chains` calls at
    /// once), of `slices`, of `callMemoryBudget` at `bytesPerImage` (`memoryEstimate`) and of `callPixelLimit`, at
    /// `imagesPerSlice` images per slice (2 with mirror averaging); at least one.
    public static func slicesPerCall(batchSize: Int, chains: Int, slices: Int, bytesPerImage: Int, pixelsPerImage: Int,
                                     imagesPerSlice: Int) -> Int {
        let chains = max(1, chains), images = max(1, imagesPerSlice)
        let (bytes, overflow) = bytesPerImage.multipliedReportingOverflow(by: images * chains)
        return max(1, min((max(1, batchSize) + chains - 1) / chains, (slices + chains - 1) / chains,
                          overflow ? 0 : callMemoryBudget / max(1, bytes),
                          callPixelLimit / max(1, pixelsPerImage * images)))
    }

    public init(generator: any SliceTranslationNetwork, preprocessing: PreprocessingConfiguration) {
        self.generator = generator
        self.preprocessing = preprocessing
        generator.setInferenceKernelStorage(.perCall)
    }

    /// Estimated bytes one width × height image adds to a generator call in inference: the activations the call
    /// keeps (`ActivationArena`: only the maps alive at once, e.g. 2.25·ngf full-resolution maps per image for the
    /// ResNet generator) and the kernels' whole-batch copies (oneDNN's blocked layouts, bf16 operands), as
    /// `SliceTranslationNetwork.fullResolutionMaps` counts them: 4 · maps · width · height bytes (for the ResNet
    /// generator (4.75·ngf + 2) maps, 76.5 MiB at ngf 64 and 256²). Not per image, so not counted: the weights,
    /// their transformed copies, and buffers of one image at a time (Winograd tiles, column buffers tiled to a
    /// fixed budget by `Conv2d`, the 7 × 7 head's padded input).
    public func memoryEstimate(width: Int, height: Int) -> Int {
        let pixels = width.multipliedReportingOverflow(by: height)
        guard !pixels.overflow else { return Int.max }
        let maps = generator.fullResolutionMaps
        let (bytes, overflow) = pixels.partialValue.multipliedReportingOverflow(by: 4 * maps)
        return overflow ? Int.max : bytes
    }

    /// The generator's output for `input` (N × C × H × W). When H or W is not a multiple of the generator's
    /// `sizeMultiple` (a U-Net's 2^downsamplings), the images are padded equally on both sides (the odd pixel at
    /// the right/bottom) with `background` (the MR background, as training pads) and the output is cut back to
    /// H × W; otherwise the generator runs on the input as it is.
    public func infer(_ input: Tensor, background: Float) -> Tensor {
        let m = max(1, generator.sizeMultiple)
        let n = input.shape[0], c = input.shape[1], h = input.shape[2], w = input.shape[3]
        let ph = (h + m - 1) / m * m, pw = (w + m - 1) / m * m
        guard ph != h || pw != w else { return generator.infer(input) }
        let top = (ph - h) / 2, left = (pw - w) / 2
        let padded = Tensor(shape: [n, c, ph, pw])
        padded.fill(background)
        let x = input.pointer, p = padded.pointer
        for plane in 0..<(n * c) {
            for r in 0..<h { (p + plane * ph * pw + (r + top) * pw + left).update(from: x + plane * h * w + r * w, count: w) }
        }
        let full = generator.infer(padded)
        let oc = full.shape[1]
        let output = Tensor(shape: [n, oc, h, w])
        let f = full.pointer, o = output.pointer
        for plane in 0..<(n * oc) {
            for r in 0..<h { (o + plane * h * w + r * w).update(from: f + plane * ph * pw + (r + top) * pw + left, count: w) }
        }
        return output
    }

    /// MR volume -> synthetic CT (HU) on exactly the MR's grid (same header geometry); air (-1024) outside the
    /// body mask (`bodyMask`, default `BodyMask.compute(mr)`). `planes` nil means the training plane; several
    /// planes are averaged. `progress(done, total)` is called after each batch of slices, over all planes.
    public func translate(_ mr: Volume, planes: [SlicePlane]? = nil, batchSize: Int = 4, mirrorAverage: Bool = false,
                          bodyMask: [Bool]? = nil, field: SliceField = .wholeSlice,
                          progress: ((Int, Int) -> Void)? = nil) throws -> Volume {
        let mask = bodyMask ?? BodyMask.compute(mr)
        let stack = PredictionStack(count: mr.grid.count, keepsSpread: false)
        _ = try predict(mr, bodyMask: mask, planes: planes, batchSize: batchSize, mirrorAverage: mirrorAverage,
                        field: field, into: stack, progress: progress)
        return Self.syntheticCT(like: mr, values: stack.takeMean(), bodyMask: mask)
    }

    /// The planes `planes` names without repetitions (nil: the training plane).
    public func planes(_ planes: [SlicePlane]?) -> [SlicePlane] {
        var unique: [SlicePlane] = []
        for plane in planes ?? [preprocessing.plane] where !unique.contains(plane) { unique.append(plane) }
        return unique
    }

    /// Predictions per plane: 1, or 2 with mirror averaging.
    public static func predictionsPerPlane(mirrorAverage: Bool) -> Int { mirrorAverage ? 2 : 1 }

    /// Adds this model's predictions of `mr` (HU, on the MR's grid; one per plane, and one more per plane with
    /// `mirrorAverage`) to `stack`, and returns which voxels every one of them covered (the network's field), or nil
    /// when every voxel was covered (always so for the `.wholeSlice` field). Slices without body voxels are not run
    /// (their voxels are air after masking anyway) and count as covered.
    ///
    /// Each batch of slices is added to the stack as soon as it is predicted (`PredictionStack.accumulate`), so no
    /// volume-sized buffer is held per prediction: beside the MR, its mask and the stack, only the plane's prepared
    /// slices (at the model's spacing) are alive.
    @discardableResult
    public func predict(_ mr: Volume, bodyMask mask: [Bool], planes: [SlicePlane]?, batchSize: Int = 4,
                        mirrorAverage: Bool = false, field: SliceField = .wholeSlice, into stack: PredictionStack,
                        progress: ((Int, Int) -> Void)? = nil) throws -> [Bool]? {
        let planes = self.planes(planes)
        guard !planes.isEmpty else { throw TranslationError("no slice plane given") }
        let channels = generator.inputChannels
        guard channels == preprocessing.contextSlices else {
            throw TranslationError("the generator takes \(channels) input channels but the preprocessing gives "
                                   + "\(preprocessing.contextSlices) context slices")
        }
        guard mask.count == mr.grid.count, stack.count == mr.grid.count else {
            throw TranslationError("the body mask has \(mask.count) voxels and the prediction stack \(stack.count), the MR \(mr.grid.count)")
        }
        let slicesPerPlane = try planes.map { try sliceCount(of: mr, in: $0) }
        let total = slicesPerPlane.reduce(0, +)
        var done = 0
        var covered: [Bool]?

        for plane in planes {
            var configuration = preprocessing
            configuration.plane = plane
            let volume = try SlicePipeline(configuration: configuration).prepare(mr, as: .mr, bodyMask: mask, field: field)
            let width = volume.inputWidth, height = volume.inputHeight, pixels = width * height
            let perSlice = memoryEstimate(width: width, height: height)
            guard perSlice <= Self.sliceMemoryLimit else {
                throw TranslationError("a \(plane.rawValue) slice is \(width) x \(height) pixels at the model's spacing, "
                                       + "about \(perSlice >> 20) MiB of activations, more than the limit of "
                                       + "\(Self.sliceMemoryLimit >> 20) MiB")
            }
            let images = mirrorAverage ? 2 : 1
            let work = (0..<volume.sliceCount).filter { volume.bodyFraction(ofSlice: $0) > 0 }
            // Two generator calls at once, one per core, each on single-threaded kernels (`ComputeThreads.map`):
            // the non-GEMM work and the single-threaded oneDNN passes then keep both cores busy, as a training
            // step's two chains do. `batchSize` slices and the memory budget are shared by the calls in flight, and
            // a batch is at most 1/chains of the slices, so every call runs on single-threaded kernels and the
            // result is the same as with `--threads 1`.
            let chains = min(Self.concurrentCalls, max(1, work.count))
            let batch = Self.slicesPerCall(batchSize: batchSize, chains: chains, slices: work.count,
                                           bytesPerImage: perSlice, pixelsPerImage: pixels, imagesPerSlice: images)
            let writer = SliceWriter(volume, as: .ct)
            // This plane's predictions are members `first` (plain) and `first + 1` (mirrored) of the stack.
            let first = stack.beginPredictions(images)
            let runSet = Set(work)
            stack.accumulate { add in
                for s in 0..<volume.sliceCount where !runSet.contains(s) {
                    volume.layout.forEachSourceIndex(ofSlice: s) { _, i in
                        for member in 0..<images { add(Self.airHU, i, first + member) }
                    }
                }
            }
            done += volume.sliceCount - work.count
            var start = 0
            var back = mirrorAverage ? [Float](repeating: 0, count: pixels) : []
            let image = channels * pixels
            while start < work.count {
                // Up to `chains` batches of consecutive slices, predicted at once.
                var groups: [ArraySlice<Int>] = []
                var next = start
                while groups.count < chains && next < work.count {
                    groups.append(work[next..<min(next + batch, work.count)])
                    next += groups.last!.count
                }
                // With mirror averaging a batch holds its slices, then their mirror images.
                let inputs = groups.map { indices in
                    let count = indices.count
                    let input = Tensor(shape: [images * count, channels, height, width])
                    for (n, index) in indices.enumerated() {
                        let target = UnsafeMutableBufferPointer(rebasing: input.data[(n * image)..<((n + 1) * image)])
                        volume.writeInput(index, into: target)
                        if mirrorAverage {
                            Self.mirrorRows(UnsafeBufferPointer(target), into: UnsafeMutableBufferPointer(
                                rebasing: input.data[((count + n) * image)..<((count + n + 1) * image)]), width: width)
                        }
                    }
                    return input
                }
                let outputs = ComputeThreads.map(inputs.count) { infer(inputs[$0], background: volume.background) }
                for (indices, output) in zip(groups, outputs) {
                    let count = indices.count
                    guard output.count == images * count * pixels else {
                        throw TranslationError("the generator gave \(output.count) values for \(images * count) images of \(width) x \(height)")
                    }
                    stack.accumulate { add in
                        for (n, index) in indices.enumerated() {
                            writer.write(slice: index, from: UnsafeBufferPointer(rebasing: output.data[(n * pixels)..<((n + 1) * pixels)])) {
                                add($1, $0, first)
                            }
                            if mirrorAverage {
                                // The mirrored prediction, mirrored back, is the next member.
                                back.withUnsafeMutableBufferPointer { b in
                                    Self.mirrorRows(UnsafeBufferPointer(rebasing: output.data[((count + n) * pixels)..<((count + n + 1) * pixels)]),
                                                    into: b, width: width)
                                }
                                back.withUnsafeBufferPointer { b in
                                    writer.write(slice: index, from: b) { add($1, $0, first + 1) }
                                }
                            }
                        }
                    }
                    done += count
                }
                start = next
                progress?(done, total)
            }
            // Coverage of this plane's field, slice by slice (all true for whole slices).
            let field = volume.fieldCoverage()
            if field.contains(false) {
                if covered == nil { covered = [Bool](repeating: true, count: mr.grid.count) }
                for s in 0..<volume.layout.sliceCount {
                    volume.layout.forEachSourceIndex(ofSlice: s) { pixel, i in if !field[pixel] { covered![i] = false } }
                }
            }
        }
        return covered
    }

    /// The synthetic CT volume: `values` (HU) inside `bodyMask`, air outside, on `mr`'s grid with its geometry.
    /// `values` is reused in place (pass it without other references, e.g. `PredictionStack.takeMean()`, and no
    /// copy is made).
    public static func syntheticCT(like mr: Volume, values: consuming [Float], bodyMask mask: [Bool]) -> Volume {
        precondition(values.count == mr.grid.count && mask.count == mr.grid.count)
        var voxels = values
        voxels.withUnsafeMutableBufferPointer { out in
            mask.withUnsafeBufferPointer { m in
                for i in 0..<out.count where !m[i] { out[i] = airHU }
            }
        }
        return derived(from: mr, voxels: voxels, description: "mr2ct synthetic CT (HU)")
    }

    /// A volume of plain values (HU) on `mr`'s grid: geometry (dim, pixdim, qform, sform, codes, units) stays the
    /// MR's; scaling, display range and intent are reset.
    public static func derived(from mr: Volume, voxels: [Float], description: String) -> Volume {
        var result = mr.replacingVoxels(voxels)
        result.header.sclSlope = 1
        result.header.sclInter = 0
        result.header.calMin = 0
        result.header.calMax = 0
        result.header.intentCode = 0
        result.header.descrip = description
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

/// The predictions of one volume accumulated voxel by voxel (Welford's running mean and sum of squared deviations,
/// Welford 1962), so that ensembles, planes and mirror images are averaged without keeping every prediction, and
/// their spread is the per-voxel uncertainty.
public final class PredictionStack {
    /// Voxels per prediction.
    public let count: Int
    /// Predictions added so far.
    public private(set) var members = 0
    /// The running mean (HU); empty before the first prediction and after `takeMean`.
    public private(set) var mean: [Float]
    private var m2: [Float]
    /// Whether the spread is accumulated (else only the mean).
    public let keepsSpread: Bool

    /// The buffers are allocated with the first prediction (so a conversion's preparation, which needs temporary
    /// memory of its own, runs before they exist).
    public init(count: Int, keepsSpread: Bool) {
        self.count = count
        self.keepsSpread = keepsSpread
        mean = []
        m2 = []
    }

    private func allocate() {
        guard mean.isEmpty, count > 0 else { return }
        mean = [Float](repeating: 0, count: count)
        if keepsSpread { m2 = [Float](repeating: 0, count: count) }
    }

    /// Adds one prediction of `count` values.
    public func add(_ values: UnsafeBufferPointer<Float>) {
        precondition(values.count == count, "a prediction of \(values.count) voxels for a stack of \(count)")
        allocate()
        members += 1
        let n = Float(members)
        mean.withUnsafeMutableBufferPointer { m in
            if keepsSpread {
                m2.withUnsafeMutableBufferPointer { q in
                    for i in 0..<count {
                        let delta = values[i] - m[i]
                        m[i] += delta / n
                        q[i] += delta * (values[i] - m[i])
                    }
                }
            } else {
                for i in 0..<count { m[i] += (values[i] - m[i]) / n }
            }
        }
    }

    /// Reserves the next `count` predictions, to be added voxel by voxel with `accumulate`, and returns the number
    /// (1-based) of the first. Each reserved prediction must be given exactly one value for every voxel.
    public func beginPredictions(_ count: Int) -> Int {
        precondition(count > 0)
        allocate()
        let first = members + 1
        members += count
        return first
    }

    /// Runs `body` with `add(value, voxel, member)`: Welford's update of `voxel` with `value` as prediction number
    /// `member` (from `beginPredictions`). A voxel's predictions must be added in member order; the result is then
    /// bit for bit that of `add` with whole volumes.
    public func accumulate(_ body: ((Float, Int, Int) -> Void) throws -> Void) rethrows {
        try mean.withUnsafeMutableBufferPointer { m in
            if keepsSpread {
                try m2.withUnsafeMutableBufferPointer { q in
                    try body { value, i, member in
                        let delta = value - m[i]
                        m[i] += delta / Float(member)
                        q[i] += delta * (value - m[i])
                    }
                }
            } else {
                try body { value, i, member in m[i] += (value - m[i]) / Float(member) }
            }
        }
    }

    /// The mean, moved out of the stack (which is left empty): no copy of a volume-sized buffer.
    public func takeMean() -> [Float] {
        if members == 0 { allocate() }
        defer { mean = [] }
        return mean
    }

    /// The per-voxel (population) standard deviation of the predictions: √(∑(x − mean)² / members); nil without
    /// `keepsSpread` or before any prediction.
    public var standardDeviation: [Float]? {
        guard keepsSpread, members > 0 else { return nil }
        let n = Float(members)
        return m2.map { max(0, $0 / n).squareRoot() }
    }
}

/// Why a volume could not be translated (one line; the caller prefixes the file name).
public struct TranslationError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
