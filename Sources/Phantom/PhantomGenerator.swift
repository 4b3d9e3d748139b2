import Foundation
import MR2CTSupport
import NIfTI

/// How phantoms are sampled and imaged.
public struct PhantomConfiguration: Codable, Sendable, Hashable {
    /// Voxels along i, j, k.
    public var gridSize: [Int] = [80, 96, 36]
    /// Voxel spacing (mm) along i, j, k.
    public var spacing: [Double] = [2.0, 2.0, 4.0]
    /// Largest amplitude (mm) of each wave of the smooth random deformation.
    public var deformation: Double = 4
    /// MR Rician noise: σ as a fraction of the white-matter signal (each subject draws 0.7–1.3 × this).
    public var mrNoise: Double = 0.03
    /// CT noise: σ in HU of the spatially correlated Gaussian noise (each subject draws 0.7–1.3 × this).
    public var ctNoise: Double = 8
    /// Multiplicative MR bias field: the largest coefficient of its log-polynomial (0 = none).
    public var biasField: Double = 0.12
    /// The largest rotation (degrees) of the head in the scanner and of the grid in world space, per axis.
    public var maximumRotation: Double = 6
    /// Sub-samples per voxel are chosen so that each is at most this many mm wide (partial-volume effect).
    public var subsampleSpacing: Double = 1.2

    public init() {}

    /// Checks sizes and values; the reason in words, or nil when valid.
    public var problem: String? {
        guard gridSize.count == 3, gridSize.allSatisfy({ $0 >= 8 && $0 <= 1024 }) else {
            return "grid size must be three numbers in 8…1024, got \(gridSize)"
        }
        guard gridSize.reduce(1, *) <= 1 << 27 else { return "grid \(gridSize) is too large" }
        guard spacing.count == 3, spacing.allSatisfy({ $0.isFinite && $0 >= 0.25 && $0 <= 10 }) else {
            return "spacing must be three numbers in 0.25…10 mm, got \(spacing)"
        }
        for (name, value) in [("deformation", deformation), ("MR noise", mrNoise), ("CT noise", ctNoise),
                              ("bias field", biasField), ("rotation", maximumRotation)]
        where !value.isFinite || value < 0 {
            return "\(name) must be a non-negative number, got \(value)"
        }
        guard subsampleSpacing.isFinite, subsampleSpacing > 0.1 else { return "sub-sample spacing must be > 0.1 mm" }
        return nil
    }
}

/// One generated subject: a T1-weighted MR and a CT (HU) of the same anatomy on the same grid.
public struct PhantomSubject: Sendable {
    /// "sub-003" for index 3.
    public var name: String
    public var index: Int
    /// T1-weighted MR, arbitrary scanner units (white matter ≈ 300–500 before bias and noise).
    public var mr: Volume
    /// CT in Hounsfield units, clipped to [-1024, 3071].
    public var ct: Volume
    /// The tissue covering most of each voxel (`PhantomTissue.rawValue`).
    public var labels: [UInt8]
    /// The fraction of each voxel's sub-samples that are its label's tissue (1 = a pure voxel).
    public var labelFraction: [Float]
    public var anatomy: HeadAnatomy
    /// Each tissue's mean CT number (HU) and T1 signal (white matter = 1) for this subject, by raw value.
    public var tissueHU: [Double]
    public var tissueT1: [Double]
    /// The MR signal of white matter before bias field and noise, and the noise levels used.
    public var mrWhiteMatterSignal: Double
    public var mrNoiseSigma: Double
    public var ctNoiseSigma: Double
}

/// Paired synthetic head phantoms: subject `index` of seed `seed` is always the same subject, whatever else
/// is generated, so that disjoint index ranges give disjoint subjects (training MR, training CT, held-out pairs).
public struct PhantomGenerator: Sendable {
    public let configuration: PhantomConfiguration
    public let seed: UInt64

    public init(configuration: PhantomConfiguration = .init(), seed: UInt64) {
        self.configuration = configuration
        self.seed = seed
    }

    /// The name of subject `index`: "sub-003".
    public static func subjectName(_ index: Int) -> String {
        "sub-" + (index < 1000 ? String(format: "%03d", index) : String(index))
    }

    /// Generates subject `index` (≥ 0). Deterministic: the same (seed, index, configuration) gives the same
    /// voxels on every machine (the maths is IEEE double, sin/cos/exp/log from the C library).
    public func subject(_ index: Int) -> PhantomSubject {
        let config = configuration
        var rng = SeededRandom(seed: seed, stream: UInt64(truncatingIfNeeded: index))
        func uniform(_ range: ClosedRange<Double>) -> Double {
            range.lowerBound + (range.upperBound - range.lowerBound) * rng.nextUnitDouble()
        }
        let anatomy = HeadAnatomy(random: &rng, deformation: config.deformation)
        let tissueHU = PhantomTissue.allCases.map { uniform($0.ctRange) }
        let tissueT1 = PhantomTissue.allCases.map { uniform($0.t1Range) }
        let gain = uniform(300...500)
        let mrSigma = config.mrNoise * uniform(0.7...1.3) * gain
        let ctSigma = config.ctNoise * uniform(0.7...1.3)
        let biasCoefficients = (0..<9).map { _ in uniform(-1...1) * config.biasField }
        let maxAngle = config.maximumRotation * Double.pi / 180
        let pose = Self.rotation(uniform(-1...1) * maxAngle, uniform(-1...1) * maxAngle, uniform(-1...1) * maxAngle)
        let poseShift = SIMD3(uniform(-4...4), uniform(-4...4), uniform(-3...3))
        let gridRotation = Self.rotation(uniform(-1...1) * maxAngle, 0, uniform(-0.5...0.5) * maxAngle)
        let noiseSeed = rng.next()

        // Voxel to world: an oblique LPS-stored grid (i → left, j → posterior, k → superior) centred near
        // (0, 0, 8) mm, so that the top of the head is inside the field of view and the face is cut below.
        let n = config.gridSize, s = config.spacing
        let grid = GridSize(n[0], n[1], n[2])
        let directions = Self.multiply(gridRotation, [SIMD3(-1, 0, 0), SIMD3(0, -1, 0), SIMD3(0, 0, 1)])
        let columns = (0..<3).map { directions[$0] * s[$0] }
        let centreIndex = SIMD3(Double(n[0] - 1), Double(n[1] - 1), Double(n[2] - 1)) / 2
        let worldCentre = SIMD3(0.0, 0.0, 8.0)
        let origin = worldCentre - (columns[0] * centreIndex.x + columns[1] * centreIndex.y + columns[2] * centreIndex.z)
        let affine = Affine(rows: (0..<3).map { r in SIMD4(columns[0][r], columns[1][r], columns[2][r], origin[r]) }
                            + [SIMD4(0, 0, 0, 1)])

        // Sub-samples per voxel along each axis (partial-volume averaging).
        let sub = (0..<3).map { max(1, Int((s[$0] / config.subsampleSpacing).rounded(.up))) }
        let subCount = sub[0] * sub[1] * sub[2]
        var subsampleOffsets: [SIMD3<Double>] = []
        for c in 0..<sub[2] { for b in 0..<sub[1] { for a in 0..<sub[0] {
            subsampleOffsets.append(SIMD3((Double(a) + 0.5) / Double(sub[0]) - 0.5,
                                 (Double(b) + 0.5) / Double(sub[1]) - 0.5,
                                 (Double(c) + 0.5) / Double(sub[2]) - 0.5))
        } } }
        let offsets = subsampleOffsets
        // World → head: q = poseᵀ (p − shift).
        let poseT = [SIMD3(pose[0].x, pose[1].x, pose[2].x), SIMD3(pose[0].y, pose[1].y, pose[2].y),
                     SIMD3(pose[0].z, pose[1].z, pose[2].z)]
        @Sendable func head(_ world: SIMD3<Double>) -> SIMD3<Double> {
            let d = world - poseShift
            return SIMD3((poseT[0] * d).sum(), (poseT[1] * d).sum(), (poseT[2] * d).sum())
        }
        let halfField = SIMD3(Double(n[0]) * s[0], Double(n[1]) * s[1], Double(n[2]) * s[2]) / 2

        let count = grid.count, sliceCount = n[0] * n[1]
        var mrValues = [Float](repeating: 0, count: count)
        var ctValues = [Float](repeating: 0, count: count)
        var labels = [UInt8](repeating: 0, count: count)
        var fractions = [Float](repeating: 0, count: count)
        let tissueCount = PhantomTissue.allCases.count
        let hu = tissueHU, t1 = tissueT1

        mrValues.withUnsafeMutableBufferPointer { mrBuffer in
        ctValues.withUnsafeMutableBufferPointer { ctBuffer in
        labels.withUnsafeMutableBufferPointer { labelBuffer in
        fractions.withUnsafeMutableBufferPointer { fractionBuffer in
            let out = SliceBuffers(mr: mrBuffer, ct: ctBuffer, labels: labelBuffer, fractions: fractionBuffer)
            DispatchQueue.concurrentPerform(iterations: n[2]) { k in
                var rng = SeededRandom(seed: noiseSeed, stream: UInt64(k))
                var counts = [Int](repeating: 0, count: tissueCount)
                let ctNoise = Self.correlatedNoise(width: n[0], height: n[1], rng: &rng)
                for j in 0..<n[1] {
                    for i in 0..<n[0] {
                        let centre = SIMD3(Double(i), Double(j), Double(k))
                        let worldCentre = affine.apply(centre)
                        let u = anatomy.displacement(at: head(worldCentre))
                        for t in 0..<tissueCount { counts[t] = 0 }
                        var sumHU = 0.0, sumT1 = 0.0
                        for o in offsets {
                            let tissue = anatomy.tissue(at: head(affine.apply(centre + o)), displacement: u)
                            let t = Int(tissue.rawValue)
                            counts[t] += 1
                            sumHU += hu[t]
                            sumT1 += t1[t]
                        }
                        var best = 0
                        for t in 1..<tissueCount where counts[t] > counts[best] { best = t }
                        let index = i + n[0] * j + sliceCount * k
                        out.labels[index] = UInt8(best)
                        out.fractions[index] = Float(counts[best]) / Float(subCount)
                        // CT: partial-volume mean plus correlated noise, clipped to the 12-bit CT range.
                        let ct = sumHU / Double(subCount) + ctSigma * ctNoise[i + n[0] * j]
                        out.ct[index] = Float(min(3071, max(-1024, ct)))
                        // MR: signal × bias field, then Rician noise |S + σ(n₁ + i n₂)| (Gudbjartsson & Patz 1995).
                        let r = (worldCentre - SIMD3(0, 0, 8)) / halfField
                        let signal = gain * sumT1 / Double(subCount) * Self.bias(biasCoefficients, r)
                        let n1 = rng.nextNormal(), n2 = rng.nextNormal()
                        let real = signal + mrSigma * n1, imaginary = mrSigma * n2
                        out.mr[index] = Float((real * real + imaginary * imaginary).squareRoot())
                    }
                }
            }
        }
        }
        }
        }

        var mrHeader = NIfTIHeader(grid: grid, affine: affine)
        mrHeader.descrip = "MR2CT phantom \(Self.subjectName(index)) seed \(seed) T1w"
        var ctHeader = NIfTIHeader(grid: grid, affine: affine)
        ctHeader.descrip = "MR2CT phantom \(Self.subjectName(index)) seed \(seed) CT HU"
        return PhantomSubject(
            name: Self.subjectName(index), index: index,
            mr: Volume(grid: grid, voxels: mrValues, affine: affine, header: mrHeader),
            ct: Volume(grid: grid, voxels: ctValues, affine: affine, header: ctHeader),
            labels: labels, labelFraction: fractions, anatomy: anatomy,
            tissueHU: tissueHU, tissueT1: tissueT1, mrWhiteMatterSignal: gain,
            mrNoiseSigma: mrSigma, ctNoiseSigma: ctSigma)
    }

    // MARK: - Helpers

    /// The output buffers shared by the slice workers; each worker writes only its own slice.
    private struct SliceBuffers: @unchecked Sendable {
        var mr: UnsafeMutableBufferPointer<Float>
        var ct: UnsafeMutableBufferPointer<Float>
        var labels: UnsafeMutableBufferPointer<UInt8>
        var fractions: UnsafeMutableBufferPointer<Float>
    }

    /// Multiplicative bias field exp(Σ cₘ Pₘ(r)) over second-order polynomials of the normalised position r
    /// (r in [-1, 1]³ across the field of view): smooth, spanning about ±(3·max coefficient) in log.
    static func bias(_ c: [Double], _ r: SIMD3<Double>) -> Double {
        let terms = [r.x, r.y, r.z, r.x * r.y, r.y * r.z, r.x * r.z,
                     r.x * r.x - 1.0 / 3, r.y * r.y - 1.0 / 3, r.z * r.z - 1.0 / 3]
        var e = 0.0
        for m in 0..<min(c.count, terms.count) { e += c[m] * terms[m] }
        return exp(e)
    }

    /// Unit-variance Gaussian noise with the in-plane correlation of reconstructed CT: white noise filtered by
    /// [1 2 1]/4 along each row and column, rescaled to unit variance (the filter's gain is (6/16)² = 0.140625).
    static func correlatedNoise(width: Int, height: Int, rng: inout SeededRandom) -> [Double] {
        var white = [Double](repeating: 0, count: width * height)
        for i in white.indices { white[i] = rng.nextNormal() }
        var rows = white
        for y in 0..<height {
            for x in 0..<width {
                let l = white[y * width + max(0, x - 1)], r = white[y * width + min(width - 1, x + 1)]
                rows[y * width + x] = (l + 2 * white[y * width + x] + r) / 4
            }
        }
        var out = rows
        let scale = 1 / (6.0 / 16).squareRoot() / (6.0 / 16).squareRoot()
        for y in 0..<height {
            for x in 0..<width {
                let u = rows[max(0, y - 1) * width + x], d = rows[min(height - 1, y + 1) * width + x]
                out[y * width + x] = (u + 2 * rows[y * width + x] + d) / 4 * scale
            }
        }
        return out
    }

    /// Rotation matrix (rows) Rz(γ)·Ry(β)·Rx(α).
    static func rotation(_ alpha: Double, _ beta: Double, _ gamma: Double) -> [SIMD3<Double>] {
        let (ca, sa, cb, sb, cg, sg) = (cos(alpha), sin(alpha), cos(beta), sin(beta), cos(gamma), sin(gamma))
        let rx = [SIMD3(1, 0, 0), SIMD3(0, ca, -sa), SIMD3(0, sa, ca)]
        let ry = [SIMD3(cb, 0, sb), SIMD3(0, 1, 0), SIMD3(-sb, 0, cb)]
        let rz = [SIMD3(cg, -sg, 0), SIMD3(sg, cg, 0), SIMD3(0, 0, 1)]
        return multiplyMatrices(rz, multiplyMatrices(ry, rx))
    }

    static func multiplyMatrices(_ a: [SIMD3<Double>], _ b: [SIMD3<Double>]) -> [SIMD3<Double>] {
        let bT = [SIMD3(b[0].x, b[1].x, b[2].x), SIMD3(b[0].y, b[1].y, b[2].y), SIMD3(b[0].z, b[1].z, b[2].z)]
        return a.map { row in SIMD3((row * bT[0]).sum(), (row * bT[1]).sum(), (row * bT[2]).sum()) }
    }

    /// The matrix `m` (rows) applied to each of `vectors`.
    static func multiply(_ m: [SIMD3<Double>], _ vectors: [SIMD3<Double>]) -> [SIMD3<Double>] {
        vectors.map { v in SIMD3((m[0] * v).sum(), (m[1] * v).sum(), (m[2] * v).sum()) }
    }
}
