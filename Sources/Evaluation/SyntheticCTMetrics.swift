import NIfTI

/// Image similarity of a synthetic CT to a reference CT, as the SynthRAD 2023 challenge scores it
/// (Huijben et al. 2024, "Generating synthetic computed tomography for radiotherapy: SynthRAD2023 challenge
/// report", §2.4; evaluation code github.com/SynthRAD2023/metrics, `image_metrics.py`).
public struct SyntheticCTMetrics: Codable, Sendable, Hashable {
    /// Mean absolute error in HU inside the mask, unclipped: mean |sCT − CT|.
    public var mae: Double
    /// Mean error (bias) in HU inside the mask, unclipped: mean (sCT − CT); positive when the sCT is too dense.
    public var me: Double
    /// Peak signal-to-noise ratio in dB: both images clipped to [−1024, 3000] HU, data range 4024, MSE inside the
    /// mask. `+infinity` when the images agree exactly.
    public var psnr: Double
    /// Mean structural similarity inside the mask (see `SyntheticCTEvaluation.structuralSimilarity`).
    public var ssim: Double
    /// The number of mask voxels the metrics were averaged over.
    public var voxels: Int

    public init(mae: Double, me: Double, psnr: Double, ssim: Double, voxels: Int) {
        self.mae = mae
        self.me = me
        self.psnr = psnr
        self.ssim = ssim
        self.voxels = voxels
    }
}

/// Why two volumes could not be compared (one line; the caller prefixes the file name).
public struct EvaluationError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The SSIM averaging window. SynthRAD calls scikit-image's `structural_similarity` with its defaults: a uniform
/// 7-voxel window and the sample covariance (N/(N−1)). Wang et al. 2004 use a Gaussian window (σ = 1.5, 11 taps
/// in scikit-image's truncation at 3.5σ) and the population covariance.
public enum SSIMWindow: Sendable, Hashable {
    /// A uniform window of `size` (odd) voxels along each axis, sample covariance (SynthRAD's choice: size 7).
    case uniform(size: Int)
    /// A Gaussian window of standard deviation `sigma` voxels, truncated at 3.5σ, population covariance.
    case gaussian(sigma: Double)

    /// SynthRAD 2023's window: uniform, 7 voxels.
    public static let synthRAD = SSIMWindow.uniform(size: 7)

    /// The normalised 1-D weights (length 2r + 1) and the covariance normalisation for a `dimensions`-D window.
    func weights(dimensions: Int) -> (weights: [Double], covarianceNorm: Double) {
        switch self {
        case .uniform(let size):
            let n = Double(size)
            let np = pow(n, Double(dimensions))
            return ([Double](repeating: 1 / n, count: size), np / (np - 1))
        case .gaussian(let sigma):
            // scipy.ndimage.gaussian_filter: radius int(truncate·σ + 0.5), weights exp(−x²/2σ²) normalised.
            let radius = Int(3.5 * sigma + 0.5)
            var w = (-radius...radius).map { x in exp(-0.5 * Double(x * x) / (sigma * sigma)) }
            let total = w.reduce(0, +)
            w = w.map { $0 / total }
            return (w, 1)
        }
    }
}

/// The SynthRAD image metrics (MAE, ME, PSNR, SSIM) of a synthetic CT against a reference CT.
public enum SyntheticCTEvaluation {
    /// The HU window both images are clipped to for PSNR and SSIM (SynthRAD 2023).
    public static let lowerHU: Float = -1024
    public static let upperHU: Float = 3000
    /// The PSNR/SSIM data range, 3000 − (−1024) = 4024 HU.
    public static var dataRange: Double { Double(upperHU - lowerHU) }

    /// All four metrics of `prediction` against `reference` inside `mask` (on the reference's grid, i fastest).
    /// The two volumes must share a grid; `ssimWindow` defaults to SynthRAD's.
    public static func evaluate(prediction: Volume, reference: Volume, mask: [Bool],
                                ssimWindow: SSIMWindow = .synthRAD) throws -> SyntheticCTMetrics {
        guard prediction.grid == reference.grid else {
            throw EvaluationError("grid \(prediction.grid) differs from the reference's \(reference.grid)")
        }
        return try evaluate(prediction: prediction.voxels, reference: reference.voxels, grid: reference.grid,
                            mask: mask, ssimWindow: ssimWindow)
    }

    /// All four metrics on raw voxel arrays (i fastest) of size `grid`.
    public static func evaluate(prediction: [Float], reference: [Float], grid: GridSize, mask: [Bool],
                                ssimWindow: SSIMWindow = .synthRAD) throws -> SyntheticCTMetrics {
        try checkSizes(prediction, reference, grid, mask)
        let errors = try differences(prediction: prediction, reference: reference, mask: mask)
        let psnr = try peakSignalToNoiseRatio(prediction: prediction, reference: reference, mask: mask)
        let ssim = try structuralSimilarity(prediction: prediction, reference: reference, grid: grid, mask: mask,
                                            window: ssimWindow)
        return SyntheticCTMetrics(mae: errors.mae, me: errors.me, psnr: psnr, ssim: ssim, voxels: errors.count)
    }

    /// MAE and ME in HU over the mask voxels (unclipped), and their count.
    public static func differences(prediction: [Float], reference: [Float], mask: [Bool]) throws
        -> (mae: Double, me: Double, count: Int) {
        guard prediction.count == reference.count, mask.count == reference.count else {
            throw EvaluationError("arrays of \(prediction.count), \(reference.count) and \(mask.count) voxels differ")
        }
        var absSum = 0.0, sum = 0.0, n = 0
        prediction.withUnsafeBufferPointer { p in
            reference.withUnsafeBufferPointer { r in
                mask.withUnsafeBufferPointer { m in
                    for v in 0..<p.count where m[v] {
                        let d = Double(p[v]) - Double(r[v])
                        absSum += abs(d)
                        sum += d
                        n += 1
                    }
                }
            }
        }
        guard n > 0 else { throw EvaluationError("the mask is empty") }
        return (absSum / Double(n), sum / Double(n), n)
    }

    /// PSNR in dB: both images clipped to [−1024, 3000], MSE over the mask voxels, data range 4024;
    /// `+infinity` when the clipped images agree on the mask.
    public static func peakSignalToNoiseRatio(prediction: [Float], reference: [Float], mask: [Bool]) throws -> Double {
        guard prediction.count == reference.count, mask.count == reference.count else {
            throw EvaluationError("arrays of \(prediction.count), \(reference.count) and \(mask.count) voxels differ")
        }
        var squares = 0.0, n = 0
        prediction.withUnsafeBufferPointer { p in
            reference.withUnsafeBufferPointer { r in
                mask.withUnsafeBufferPointer { m in
                    for v in 0..<p.count where m[v] {
                        let d = Double(clip(p[v])) - Double(clip(r[v]))
                        squares += d * d
                        n += 1
                    }
                }
            }
        }
        guard n > 0 else { throw EvaluationError("the mask is empty") }
        let mse = squares / Double(n)
        if mse == 0 { return .infinity }
        return 10 * log10(dataRange * dataRange / mse)
    }

    @inline(__always) static func clip(_ v: Float) -> Float { min(max(v, lowerHU), upperHU) }

    static func checkSizes(_ prediction: [Float], _ reference: [Float], _ grid: GridSize, _ mask: [Bool]) throws {
        guard prediction.count == grid.count, reference.count == grid.count else {
            throw EvaluationError("voxel counts \(prediction.count) and \(reference.count) do not match grid \(grid)")
        }
        guard mask.count == grid.count else {
            throw EvaluationError("mask of \(mask.count) voxels does not match grid \(grid)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
