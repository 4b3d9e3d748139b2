import Foundation
import NIfTI
import Testing
import TestSupport

/// Relative-or-absolute closeness: |a − b| ≤ tol · max(1, |b|).
func close(_ a: Double, _ b: Double, _ tol: Double) -> Bool { abs(a - b) <= tol * max(1, abs(b)) }

func stats(_ v: [Float]) -> (min: Double, max: Double, mean: Double) {
    var lo = Double.infinity, hi = -Double.infinity, sum = 0.0
    for x in v { let d = Double(x); lo = min(lo, d); hi = max(hi, d); sum += d }
    return (lo, hi, sum / Double(v.count))
}

/// The affine MR2CT must report: nibabel's, except for files without codes (NIfTI-1 method 1, diag(pixdim)).
func expectedAffine(_ e: NibabelExpectation) -> [[Double]] {
    guard e.hasNoCodes else { return e.affine }
    return [[e.zooms[0], 0, 0, 0], [0, e.zooms[1], 0, 0], [0, 0, e.zooms[2], 0], [0, 0, 0, 1]]
}

func checkGeometry(_ volume: Volume, _ e: NibabelExpectation, name: String, tolerance: Double = 1e-5) {
    #expect([volume.grid.nx, volume.grid.ny, volume.grid.nz] == Array(e.shape.prefix(3)), "\(name) dims")
    let want = expectedAffine(e)
    for r in 0..<4 {
        for c in 0..<4 {
            #expect(abs(volume.affine[r, c] - want[r][c]) <= tolerance, "\(name) affine[\(r),\(c)] \(volume.affine[r, c]) vs \(want[r][c])")
        }
    }
    for a in 0..<3 { #expect(abs(volume.spacing[a] - e.zooms[a]) <= 1e-6, "\(name) spacing") }
    #expect(volume.header.qformCode == e.qform_code, "\(name) qform_code")
    #expect(volume.header.sformCode == e.sform_code, "\(name) sform_code")
    #expect(volume.header.datatype.name == e.datatype, "\(name) datatype")
    #expect(volume.header.version == e.version, "\(name) version")
    if !e.hasNoCodes { #expect(volume.affine.orientationCode == e.orientation, "\(name) orientation") }
}

@Suite struct ReadFixtureTests {
    let expectations = try! TestSupport.nibabelExpectations()

    @Test func everyThreeDimensionalFixtureMatchesNibabel() throws {
        let threeD = expectations.fixtures.filter { $0.value.shape.count == 3 }
        #expect(threeD.count >= 20)
        for (name, e) in threeD.sorted(by: { $0.key < $1.key }) {
            let url = TestSupport.niftiFixturesDirectory.appendingPathComponent(name)
            let volume = try NIfTIFile.read(url)
            checkGeometry(volume, e, name: name)
            let s = stats(volume.voxels)
            // float32 holds the stored integers exactly up to 2^24; wider values round at 6e-8 relative.
            #expect(close(s.min, e.min!, 1e-6), "\(name) min \(s.min) vs \(e.min!)")
            #expect(close(s.max, e.max!, 1e-6), "\(name) max \(s.max) vs \(e.max!)")
            #expect(close(s.mean, e.mean!, 1e-5), "\(name) mean \(s.mean) vs \(e.mean!)")
            for p in e.probes! {
                let v = Double(volume[p.ijk[0], p.ijk[1], p.ijk[2]])
                #expect(close(v, p.value, 1e-6), "\(name) voxel \(p.ijk) \(v) vs \(p.value)")
            }
            #expect(close(volume.header.sclSlope == 0 || !volume.header.sclSlope.isFinite ? 1 : volume.header.sclSlope,
                          e.scl_slope, 1e-7), "\(name) slope")
        }
    }

    @Test func noCodesMeansDiagonalPixdimAsNIfTIMethodOne() throws {
        for name in ["no_codes.nii", "analyze.hdr"] {
            let volume = try NIfTIFile.read(TestSupport.niftiFixturesDirectory.appendingPathComponent(name))
            let z = expectations.fixtures[name]!.zooms
            #expect(volume.affine == Affine.scaling(SIMD3(z[0], z[1], z[2])), "\(name)")
            #expect(volume.affine.orientationCode == "RAS")
        }
        #expect(try NIfTIFile.read(TestSupport.niftiFixturesDirectory.appendingPathComponent("analyze.hdr")).header.version == 0)
    }

    @Test func fourDimensionalFileNeedsAVolumeIndex() throws {
        let url = TestSupport.niftiFixturesDirectory.appendingPathComponent("four_d.nii.gz")
        let e = expectations.fixtures["four_d.nii.gz"]!
        #expect(throws: NIfTIError.self) { try NIfTIFile.read(url) }
        do {
            _ = try NIfTIFile.read(url)
        } catch let error as NIfTIError {
            #expect(error.reason.contains("4-D") && error.reason.contains("3 volumes"), "\(error)")
            #expect(error.path == url.path)
        }
        for (t, v) in e.volumes!.enumerated() {
            let volume = try NIfTIFile.read(url, options: NIfTIReadOptions(volumeIndex: t))
            checkGeometry(volume, e, name: "four_d[\(t)]")
            let s = stats(volume.voxels)
            #expect(close(s.min, v.min, 1e-6) && close(s.max, v.max, 1e-6) && close(s.mean, v.mean, 1e-6))
            #expect(close(Double(volume.voxels[0]), v.first, 1e-6))
            #expect(close(Double(volume.voxels.last!), v.last, 1e-6))
            #expect(volume.header.dim == [3, 5, 4, 3, 1, 1, 1, 1])
        }
        #expect(throws: NIfTIError.self) { try NIfTIFile.read(url, options: NIfTIReadOptions(volumeIndex: 3)) }
        #expect(throws: NIfTIError.self) { try NIfTIFile.read(url, options: NIfTIReadOptions(volumeIndex: -1)) }
        let header = try NIfTIFile.readHeader(url)
        #expect(header.dim[0] == 4 && header.dim[4] == 3)
    }

    @Test func realVolumesMatchNibabel() throws {
        #expect(expectations.real.count == 3)
        for (name, e) in expectations.real.sorted(by: { $0.key < $1.key }) {
            let volume = try NIfTIFile.read(TestSupport.realVolumesDirectory.appendingPathComponent(name))
            checkGeometry(volume, e, name: name, tolerance: 1e-4)
            let s = stats(volume.voxels)
            #expect(close(s.min, e.min!, 1e-5), "\(name) min \(s.min) vs \(e.min!)")
            #expect(close(s.max, e.max!, 1e-5), "\(name) max \(s.max) vs \(e.max!)")
            #expect(close(s.mean, e.mean!, 1e-5), "\(name) mean \(s.mean) vs \(e.mean!)")
            for p in e.probes! {
                #expect(close(Double(volume[p.ijk[0], p.ijk[1], p.ijk[2]]), p.value, 1e-5), "\(name) \(p.ijk)")
            }
        }
    }

    @Test func volumeFilesAndStems() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["b.nii.gz", "a.nii", "c.hdr", "c.img", ".hidden.nii", "notes.txt", "d.HDR.GZ", "e.img.gz"] {
            _ = FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data([0]))
        }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("f.nii"), withIntermediateDirectories: false)
        let files = try NIfTIFile.volumeFiles(in: dir).map(\.lastPathComponent)
        #expect(files == ["a.nii", "b.nii.gz", "c.hdr", "d.HDR.GZ"])
        #expect(NIfTIFile.stem(of: URL(fileURLWithPath: "/x/sub01.nii.gz")) == "sub01")
        #expect(NIfTIFile.stem(of: URL(fileURLWithPath: "/x/sub.01.hdr")) == "sub.01")
        #expect(NIfTIFile.stem(of: URL(fileURLWithPath: "/x/scan.nii")) == "scan")
        #expect(!NIfTIFile.isVolumeFile(URL(fileURLWithPath: "/x/.nii")))
        #expect(!NIfTIFile.isVolumeFile(URL(fileURLWithPath: "/x/a.img")))
        #expect(throws: NIfTIError.self) { try NIfTIFile.volumeFiles(in: dir.appendingPathComponent("missing")) }
    }

    /// nifti_clib keeps global state; reads from many threads at once (the training loader does this) must give
    /// the same volumes as one at a time.
    @Test func concurrentReadsAgree() async throws {
        let names = expectations.fixtures.filter { $0.value.shape.count == 3 }.keys.sorted()
        let urls = names.map { TestSupport.niftiFixturesDirectory.appendingPathComponent($0) }
        let reference = try urls.map { try NIfTIFile.read($0).voxels }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for round in 0..<8 {
                for (i, url) in urls.enumerated() {
                    group.addTask { try NIfTIFile.read(url).voxels == reference[i] && round >= 0 }
                }
            }
            for try await same in group { #expect(same) }
        }
    }
}
