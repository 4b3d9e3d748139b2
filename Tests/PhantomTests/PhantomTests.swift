import Foundation
import NIfTI
import Testing
import TestSupport
@testable import Phantom

/// Subjects shared by several tests (generated once, lazily and thread-safely).
enum Shared {
    static let cleanConfiguration: PhantomConfiguration = {
        var c = PhantomConfiguration()
        c.mrNoise = 0
        c.ctNoise = 0
        c.biasField = 0
        return c
    }()
    /// Default imaging without noise or bias: pure voxels carry their tissue's exact values.
    static let clean = PhantomGenerator(configuration: cleanConfiguration, seed: 11).subject(1)
    /// Default imaging, same subject.
    static let noisy = PhantomGenerator(seed: 11).subject(1)
    /// A small grid for tests that need several subjects.
    static let smallConfiguration: PhantomConfiguration = {
        var c = PhantomConfiguration()
        c.gridSize = [40, 48, 18]
        c.spacing = [4, 4, 7]
        return c
    }()
}

/// Values of `values` where `mask` holds.
func select(_ values: [Float], _ mask: [Bool]) -> [Double] {
    zip(values, mask).compactMap { $1 ? Double($0) : nil }
}

/// Pure voxels (all sub-samples the same tissue) of `tissue`.
func pure(_ subject: PhantomSubject, _ tissue: PhantomTissue) -> [Bool] {
    zip(subject.labels, subject.labelFraction).map { $0 == tissue.rawValue && $1 == 1 }
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.isEmpty ? .nan : s[s.count / 2]
}

func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(1, v.count)) }

func standardDeviation(_ v: [Double]) -> Double {
    let m = mean(v)
    return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(1, v.count - 1))).squareRoot()
}

@Test func sameSeedAndIndexGiveIdenticalVolumes() {
    let generator = PhantomGenerator(configuration: Shared.smallConfiguration, seed: 42)
    let a = generator.subject(3), b = generator.subject(3)
    #expect(a.mr.voxels == b.mr.voxels)
    #expect(a.ct.voxels == b.ct.voxels)
    #expect(a.labels == b.labels)
    #expect(a.mr.affine == b.mr.affine)
    #expect(a.name == "sub-003")
    // Another index, or another seed, is another subject.
    #expect(generator.subject(4).ct.voxels != a.ct.voxels)
    #expect(PhantomGenerator(configuration: Shared.smallConfiguration, seed: 43).subject(3).ct.voxels != a.ct.voxels)
    // Numbering: three digits, then as many as needed.
    #expect(PhantomGenerator.subjectName(7) == "sub-007" && PhantomGenerator.subjectName(1234) == "sub-1234")
}

@Test func ctNumbersAreInTheDocumentedRanges() throws {
    let s = Shared.clean
    // Reference ranges (HU) from the phantom's specification, independent of PhantomTissue's tables.
    let expected: [(PhantomTissue, ClosedRange<Double>, Int)] = [
        (.air, -1000 ... -1000, 1000), (.fat, -120 ... -80, 200), (.csf, 5 ... 15, 100),
        (.greyMatter, 20 ... 45, 500), (.whiteMatter, 20 ... 45, 2000), (.deepGreyMatter, 20 ... 45, 50),
        (.cancellousBone, 300 ... 900, 200), (.corticalBone, 1400 ... 1900, 30),
        (.muscle, 30 ... 60, 200), (.sinusAir, -1000 ... -1000, 20),
    ]
    for (tissue, range, minimumCount) in expected {
        let values = select(s.ct.voxels, pure(s, tissue))
        #expect(values.count >= minimumCount, "\(tissue.name): \(values.count) pure voxels")
        let m = median(values)
        #expect(range.contains(m), "\(tissue.name): median \(m) HU")
        // Without noise a pure voxel is exactly its tissue's value.
        #expect(values.allSatisfy { abs($0 - m) < 1e-3 })
    }
    let grey = median(select(s.ct.voxels, pure(s, .greyMatter)))
    let white = median(select(s.ct.voxels, pure(s, .whiteMatter)))
    #expect(grey - white >= 5)
    // Partial volume: mixed voxels lie between their tissues, e.g. bone edges between soft tissue and bone.
    let all = s.ct.voxels
    #expect(all.min()! >= -1024 && all.max()! <= 1900)
    let mixedBone = zip(s.labels, s.labelFraction).enumerated()
        .filter { $0.element.0 == PhantomTissue.corticalBone.rawValue && $0.element.1 < 1 }.map { Double(all[$0.offset]) }
    #expect(mixedBone.count > 1000)
    #expect(median(mixedBone) > 300 && median(mixedBone) < 1500)
}

@Test func mrContrastIsT1Weighted() {
    let s = Shared.clean
    func mrMedian(_ t: PhantomTissue) -> Double { median(select(s.mr.voxels, pure(s, t))) / s.mrWhiteMatterSignal }
    // Noise-free and bias-free: white matter is exactly the gain.
    #expect(abs(mrMedian(.whiteMatter) - 1) < 1e-5)
    #expect(mrMedian(.fat) > 1.2)                                    // fat brightest
    #expect(mrMedian(.greyMatter) < 0.7 && mrMedian(.greyMatter) > 0.5)
    #expect(mrMedian(.csf) < 0.25)                                   // CSF dark
    #expect(mrMedian(.corticalBone) < 0.08)                          // cortical bone black
    #expect(mrMedian(.air) == 0 && mrMedian(.sinusAir) == 0)         // air black
    #expect(mrMedian(.cancellousBone) > mrMedian(.greyMatter))       // fatty marrow
}

@Test func mrToCTIsNotAMonotoneIntensityMap() {
    let s = Shared.noisy
    // Inside the head, the best possible function of MR intensity alone (the CT median of each of 200
    // MR-intensity bins) still leaves a large error: bone and air are both dark in MR.
    let body = s.labels.map { $0 != PhantomTissue.air.rawValue }
    let mr = select(s.mr.voxels, body), ct = select(s.ct.voxels, body)
    let top = mr.max()!
    var bins = [[Double]](repeating: [], count: 200)
    for (m, c) in zip(mr, ct) { bins[min(199, Int(m / top * 200))].append(c) }
    var error = 0.0
    for bin in bins where !bin.isEmpty {
        let m = median(bin)
        error += bin.reduce(0) { $0 + abs($1 - m) }
    }
    let bestIntensityMapMAE = error / Double(ct.count)
    #expect(bestIntensityMapMAE > 100, "best MR-intensity-only map: MAE \(bestIntensityMapMAE) HU")
    // The dark MR voxels contain both air (≈ −1000 HU) and bone (> 1000 HU).
    let dark = zip(mr, ct).filter { $0.0 < 0.1 * s.mrWhiteMatterSignal }.map(\.1)
    #expect(dark.filter { $0 < -900 }.count > 100)
    #expect(dark.filter { $0 > 1000 }.count > 100)
    // And fat is brighter than white matter in MR but 120 HU lower in CT.
    let c = Shared.clean
    #expect(median(select(c.mr.voxels, pure(c, .fat))) > median(select(c.mr.voxels, pure(c, .whiteMatter))))
    #expect(median(select(c.ct.voxels, pure(c, .fat))) < median(select(c.ct.voxels, pure(c, .whiteMatter))) - 100)
}

@Test func mrAndCTShowTheSameAnatomy() {
    let s = Shared.noisy
    // Body masks from each modality with a simple threshold agree (Dice), and with the label map.
    let ctBody = s.ct.voxels.map { $0 > -500 }
    let mrBody = s.mr.voxels.map { Double($0) > 0.3 * s.mrWhiteMatterSignal }
    func dice(_ a: [Bool], _ b: [Bool]) -> Double {
        let both = zip(a, b).filter { $0 && $1 }.count
        return 2 * Double(both) / Double(a.filter { $0 }.count + b.filter { $0 }.count)
    }
    #expect(dice(ctBody, mrBody) > 0.9)
    // Bone in CT is dark in MR; CSF (dark in MR) is water-like in CT.
    let bone = s.ct.voxels.map { $0 > 1200 }
    #expect(median(select(s.mr.voxels, bone)) < 0.35 * s.mrWhiteMatterSignal)
    let csfCT = select(s.ct.voxels, pure(s, .csf))
    #expect(abs(median(csfCT) - 9) < 10)
    // Same grid.
    #expect(s.mr.affine == s.ct.affine && s.mr.grid == s.ct.grid)
}

@Test func geometryIsAnisotropicObliqueAndLPS() throws {
    let s = Shared.noisy
    let a = s.mr.affine
    #expect(s.mr.grid == GridSize(80, 96, 36))
    let norms = a.columnNorms
    #expect(abs(norms.x - 2) < 1e-9 && abs(norms.y - 2) < 1e-9 && abs(norms.z - 4) < 1e-9)
    #expect(a.orientationCode == "LPS")
    // Oblique: some off-diagonal term is clearly non-zero.
    let offDiagonal = [a[0, 1], a[0, 2], a[1, 0], a[1, 2], a[2, 0], a[2, 1]].map(abs).max()!
    #expect(offDiagonal > 0.01)
    // The grid centre is at (0, 0, 8) mm; the head's top is inside the field of view (top slice is air).
    let centre = a.apply(SIMD3(79.0 / 2, 95.0 / 2, 35.0 / 2))
    #expect(abs(centre.x) < 1e-9 && abs(centre.y) < 1e-9 && abs(centre.z - 8) < 1e-9)
    let g = s.mr.grid
    let topSlice = (0..<(g.nx * g.ny)).map { s.labels[$0 + g.nx * g.ny * (g.nz - 1)] }
    #expect(topSlice.allSatisfy { $0 == PhantomTissue.air.rawValue })
    // The header encodes the same affine in sform and qform, with the subject in descrip.
    #expect(s.mr.header.sformCode > 0 && s.mr.header.qformCode > 0)
    #expect(s.mr.header.descrip.contains("sub-001"))
}

@Test func anatomyVariesBetweenSubjects() {
    let generator = PhantomGenerator(seed: 5)
    let subjects = (1...3).map { generator.subject($0) }
    func count(_ s: PhantomSubject, _ t: Set<PhantomTissue>) -> Int {
        s.labels.filter { t.contains(PhantomTissue(rawValue: $0)!) }.count
    }
    let heads = subjects.map { count($0, Set(PhantomTissue.allCases).subtracting([.air])) }
    let brains = subjects.map { count($0, [.greyMatter, .whiteMatter, .deepGreyMatter]) }
    let bone = subjects.map { count($0, [.corticalBone, .cancellousBone]) }
    let csf = subjects.map { count($0, [.csf]) }
    let sinus = subjects.map { count($0, [.sinusAir]) }
    for values in [heads, brains, bone, csf, sinus] {
        let lo = Double(values.min()!), hi = Double(values.max()!)
        #expect(hi / lo > 1.05, "\(values)")
    }
    // Different shapes, not only different sizes: the head masks of two subjects overlap imperfectly.
    let m0 = subjects[0].labels.map { $0 != 0 }, m1 = subjects[1].labels.map { $0 != 0 }
    let both = zip(m0, m1).filter { $0 && $1 }.count
    let dice = 2 * Double(both) / Double(m0.filter { $0 }.count + m1.filter { $0 }.count)
    #expect(dice < 0.97)
    #expect(subjects[0].anatomy != subjects[1].anatomy)
}

@Test func biasFieldIsSmoothAndMultiplicative() {
    var configuration = Shared.cleanConfiguration
    configuration.biasField = 0.12
    let s = PhantomGenerator(configuration: configuration, seed: 11).subject(1)
    let c = Shared.clean   // the same subject without bias
    let white = pure(c, .whiteMatter)
    let ratios = zip(s.mr.voxels, c.mr.voxels).enumerated().compactMap { white[$0.offset] ? Double($0.element.0 / $0.element.1) : nil }
    #expect(ratios.max()! / ratios.min()! > 1.1)          // a visible inhomogeneity across the brain
    // Smooth: neighbouring voxels along i differ by well under 1 %.
    let g = s.mr.grid
    var largestStep = 0.0
    for k in 0..<g.nz { for j in 0..<g.ny { for i in 0..<(g.nx - 1) {
        let p = g.index(i, j, k), q = g.index(i + 1, j, k)
        guard white[p], white[q] else { continue }
        largestStep = max(largestStep, abs(Double(s.mr.voxels[p] / c.mr.voxels[p]) / Double(s.mr.voxels[q] / c.mr.voxels[q]) - 1))
    } } }
    #expect(largestStep < 0.01)
    // The CT is unaffected.
    #expect(s.ct.voxels == c.ct.voxels)
}

@Test func mrNoiseIsRicianAndCTNoiseIsCorrelatedGaussian() {
    let s = Shared.noisy, c = Shared.clean
    let sigma = s.mrNoiseSigma
    // Background: magnitude of complex Gaussian noise is Rayleigh: mean σ√(π/2), E[M²] = 2σ².
    let air = select(s.mr.voxels, pure(c, .air))
    #expect(air.count > 50_000)
    #expect(abs(mean(air) / (sigma * (Double.pi / 2).squareRoot()) - 1) < 0.03)
    #expect(abs(mean(air.map { $0 * $0 }) / (2 * sigma * sigma) - 1) < 0.03)
    // In white matter (SNR ≈ 33) the noise is nearly Gaussian with standard deviation σ: compare with the same
    // subject imaged with the same bias field and no noise.
    var biasOnly = PhantomConfiguration()
    biasOnly.mrNoise = 0
    let b = PhantomGenerator(configuration: biasOnly, seed: 11).subject(1)
    let whiteMask = pure(c, .whiteMatter)
    let wmNoise = zip(select(s.mr.voxels, whiteMask), select(b.mr.voxels, whiteMask)).map { $0 - $1 }
    #expect(abs(mean(wmNoise)) < 0.05 * sigma)
    #expect(abs(standardDeviation(wmNoise) / sigma - 1) < 0.05)

    // CT noise: σ as drawn, correlation 2/3 between in-plane neighbours ([1 2 1]/4 filtering), 0 across slices.
    let noise = zip(s.ct.voxels, c.ct.voxels).map { Double($0 - $1) }
    let wm = select(s.ct.voxels, whiteMask).count
    #expect(wm > 2000)
    let wmCT = zip(noise, whiteMask).compactMap { $1 ? $0 : nil }
    #expect(abs(standardDeviation(wmCT) / s.ctNoiseSigma - 1) < 0.05)
    let g = s.ct.grid
    func correlation(_ step: (Int, Int, Int)) -> Double {
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for k in 0..<(g.nz - step.2) { for j in 0..<(g.ny - step.1) { for i in 0..<(g.nx - step.0) {
            let p = g.index(i, j, k), q = g.index(i + step.0, j + step.1, k + step.2)
            guard whiteMask[p], whiteMask[q] else { continue }
            sxy += noise[p] * noise[q]; sxx += noise[p] * noise[p]; syy += noise[q] * noise[q]
        } } }
        return sxy / (sxx * syy).squareRoot()
    }
    #expect(abs(correlation((1, 0, 0)) - 2.0 / 3) < 0.05)
    #expect(abs(correlation((0, 1, 0)) - 2.0 / 3) < 0.05)
    #expect(abs(correlation((0, 0, 1))) < 0.05)
    #expect(abs(correlation((2, 0, 0)) - 1.0 / 6) < 0.05)   // lag 2: (1·1)/16 ÷ 6/16
}

@Test func writtenFilesReadBackWithTheirGeometry() throws {
    let dir = try TestSupport.makeTemporaryDirectory("phantom")
    defer { try? FileManager.default.removeItem(at: dir) }
    let generator = PhantomGenerator(configuration: Shared.smallConfiguration, seed: 9)
    let records = try PhantomDataset.write(generator, indices: [2, 5], to: dir, outputs: [.mr, .ct, .labels, .preview])
    #expect(records.map(\.subject) == ["sub-002", "sub-005"])
    #expect(try NIfTIFile.volumeFiles(in: dir.appendingPathComponent("mr")).map { NIfTIFile.stem(of: $0) } == ["sub-002", "sub-005"])
    #expect(try NIfTIFile.volumeFiles(in: dir.appendingPathComponent("ct")).map { NIfTIFile.stem(of: $0) } == ["sub-002", "sub-005"])
    let subject = generator.subject(5)
    let mr = try NIfTIFile.read(dir.appendingPathComponent("mr/sub-005.nii.gz"))
    let ct = try NIfTIFile.read(dir.appendingPathComponent("ct/sub-005.nii.gz"))
    let labels = try NIfTIFile.read(dir.appendingPathComponent("labels/sub-005.nii.gz"))
    #expect(mr.header.datatype == .int16 && ct.header.datatype == .int16)
    #expect(mr.grid == subject.mr.grid && ct.grid == subject.ct.grid)
    for r in 0..<3 { for c in 0..<4 {
        #expect(abs(mr.affine[r, c] - subject.mr.affine[r, c]) < 1e-4)
        #expect(abs(ct.affine[r, c] - subject.mr.affine[r, c]) < 1e-4)
    } }
    #expect(zip(ct.voxels, subject.ct.voxels).allSatisfy { abs($0 - $1.rounded()) <= 0.5 + 1e-3 })
    #expect(zip(mr.voxels, subject.mr.voxels).allSatisfy { abs($0 - $1) <= 0.5 + 1e-3 })
    #expect(labels.voxels == subject.labels.map { Float($0) })
    // The label names beside the maps, as a BIDS dseg.tsv: a header and one row per tissue.
    let table = try String(contentsOf: dir.appendingPathComponent("labels/dseg.tsv"), encoding: .utf8)
    let rows = table.split(separator: "\n")
    #expect(rows.count == 13 && rows.first == "index\tname")
    #expect(rows.contains("4\tcortical bone") && rows.contains("11\tsinus air") && rows.contains("8\twhite matter"))
    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("preview/sub-002.png").path))
}

@Test func invalidConfigurationsAreReportedNotTrapped() {
    var c = PhantomConfiguration()
    #expect(c.problem == nil)
    c.gridSize = [4, 96, 36]
    #expect(c.problem != nil)
    c = PhantomConfiguration()
    c.spacing = [2, .nan, 3]
    #expect(c.problem != nil)
    c = PhantomConfiguration()
    c.ctNoise = -1
    #expect(c.problem != nil)
}
