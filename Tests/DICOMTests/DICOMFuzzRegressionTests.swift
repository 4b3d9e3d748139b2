@testable import DICOM
import DICOMFuzzing
import Foundation
import NIfTI
import Testing
import TestSupport

/// The DICOM-reader fuzzer's minimised corpus and every input that ever crashed it (Tests/Fuzz/dicom, see
/// Tests/Fuzz/README.md), replayed in-process through the fuzz harness: each input's files are read as every
/// command reads a folder (VolumeSource → DICOMFolder → CDCMTK → DCMTK) and must read into volumes that pass the
/// reader's invariants or be refused with a typed, one-line error; none may trap, and none may take longer than
/// `timeLimit` (run on its own thread; a hang fails the test instead of stalling the suite).
@Suite struct DICOMFuzzRegressionTests {
    static let root = TestSupport.packageRoot.appendingPathComponent("Tests/Fuzz/dicom")
    static let timeLimit = 30.0

    static func inputs(_ name: String) -> [URL] {
        let folder = root.appendingPathComponent(name)
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted().map { folder.appendingPathComponent($0) }
    }

    /// The outcome of one input, or nil when it did not finish within `seconds`.
    final class Slot: @unchecked Sendable {
        let lock = NSLock()
        var outcome: DICOMFuzzOutcome?
    }

    static func runBounded(_ bytes: Data, in folder: URL, seconds: Double) -> DICOMFuzzOutcome? {
        let slot = Slot(), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let outcome = bytes.withUnsafeBytes { DICOMFuzzHarness.run($0, in: folder) }
            slot.lock.lock()
            slot.outcome = outcome
            slot.lock.unlock()
            done.signal()
        }
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        slot.lock.lock()
        defer { slot.lock.unlock() }
        return slot.outcome
    }

    @Test func corpusAndCrashesReadOrAreRefusedWithTypedErrors() throws {
        let work = try TestSupport.makeTemporaryDirectory("dicom-fuzz-replay")
        defer { try? FileManager.default.removeItem(at: work) }
        let corpus = Self.inputs("corpus"), crashes = Self.inputs("crashes")
        #expect(corpus.count >= 50, "the minimised corpus is there")
        var read = 0, refused = 0, severalFiles = 0
        for (n, file) in (corpus + crashes).enumerated() {
            let bytes = try Data(contentsOf: file)
            severalFiles += bytes.withUnsafeBytes { DICOMFuzzInput.files(of: $0).count } > 1 ? 1 : 0
            let start = Date()
            // A folder per input: a hung read keeps its own files.
            guard let outcome = Self.runBounded(bytes, in: work.appendingPathComponent("\(n)"), seconds: Self.timeLimit) else {
                Issue.record("\(file.lastPathComponent): no result within \(Self.timeLimit) s")
                continue
            }
            #expect(outcome.violations.isEmpty, "\(file.lastPathComponent): \(outcome)")
            #expect(Date().timeIntervalSince(start) < Self.timeLimit)
            if outcome.volumes > 0 { read += 1 }
            if !outcome.refusals.isEmpty { refused += 1 }
        }
        // The corpus reaches both ends of the reader and series of several files.
        #expect(read >= 10 && refused >= 10 && severalFiles >= 10, "read \(read), refused \(refused), several files \(severalFiles)")
    }

    /// The input format: cut at each separator into at most three files, the rest going to the last.
    @Test func inputsSplitIntoAtMostThreeFiles() {
        let sep = DICOMFuzzInput.separator
        func split(_ bytes: [UInt8]) -> [[UInt8]] { bytes.withUnsafeBytes { DICOMFuzzInput.files(of: $0) } }
        #expect(split([]) == [[]])
        #expect(split([1, 2, 3]) == [[1, 2, 3]])
        #expect(split([1] + sep + [2, 3]) == [[1], [2, 3]])
        #expect(split(sep) == [[], []])
        #expect(split([1] + sep + [2] + sep + [3] + sep + [4]) == [[1], [2], [3] + sep + [4]])
        #expect(split(Array(sep.dropLast()) + [9]) == [Array(sep.dropLast()) + [9]])
        let files: [[UInt8]] = [[0x44, 0x49], [], [7, 7, 7]]
        #expect(split(DICOMFuzzInput.pack(files)) == files)
    }

    /// A SeriesInstanceUID is the FOLDER#SERIES selector and part of one-line messages: one holding "#" still names
    /// its series (the fuzzer's first find, crashes/series-uid-with-hash); one holding "/" or a control character
    /// (which no selector or one-line message could carry; DCMTK itself strips white space from UI values) is refused
    /// by name.
    @Test func seriesUIDsThatCannotNameASeriesAreRefused() throws {
        let work = try TestSupport.makeTemporaryDirectory("dicom-uid")
        defer { try? FileManager.default.removeItem(at: work) }
        let source = TestSupport.fixturesDirectory.appendingPathComponent("dicom/series/axial_implicit_le")
        let uid = Array("1.2.826.0.1.3680043.10.1019.3.1".utf8)
        for (n, replacement) in ["1.2.826.0.1.3680043.10.1019.3/1", "1.2.826.0.1.3680043.10.1019.3\u{1}1", "1.2.826.0.1.3680043.10.1019.3#1"].enumerated() {
            let folder = work.appendingPathComponent("\(n)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
                var bytes = [UInt8](try Data(contentsOf: source.appendingPathComponent(name)))
                let at = try #require((0...(bytes.count - uid.count)).first { Array(bytes[$0..<($0 + uid.count)]) == uid })
                bytes.replaceSubrange(at..<(at + uid.count), with: Array(replacement.utf8))
                try Data(bytes).write(to: folder.appendingPathComponent(name))
            }
            if n == 2 {
                // With a second series beside it the selector is needed: FOLDER#1.2…3#1 finds it.
                try FileManager.default.copyItem(at: TestSupport.fixturesDirectory.appendingPathComponent("dicom/series/axial_rle/IM07000"),
                                                 to: folder.appendingPathComponent("other"))
                let location = try #require(DICOMSeriesLocation(path: folder.path + "#" + replacement))
                #expect(location.selector == replacement && location.folder.path == folder.standardizedFileURL.path)
                #expect(try DICOMFolder.series(at: location).grid.nz == 5)
                continue
            }
            #expect {
                _ = try DICOMFolder.series(at: DICOMSeriesLocation(folder: folder))
            } throws: { error in
                guard let e = error as? DICOMError, case .unusableUID(let value) = e.reason else { return false }
                return value == replacement && !e.description.contains("\u{1}")
            }
        }
    }

    /// Attribute values quoted in a reason cannot break the line (crashes/photometric-with-carriage-return).
    @Test func reasonsStayOneLine() {
        let error = DICOMError(path: "/d/x\ny", reason: .unsupportedPixels("PhotometricInterpretation MONO\r\u{85}ME2\u{7F}"))
        #expect(error.description == "/d/x\\u{A}y: unsupported pixel format: PhotometricInterpretation MONO\\u{D}\\u{85}ME2\\u{7F}")
        #expect(DICOMError.Reason.missingAttribute("ImagePositionPatient").description == "a slice lacks ImagePositionPatient")
    }

    /// A good fixture series packed as one input reads; a hostile one is refused: the harness is not vacuous.
    @Test func harnessReadsGoodSeriesAndRefusesHostileOnes() throws {
        let work = try TestSupport.makeTemporaryDirectory("dicom-fuzz-harness")
        defer { try? FileManager.default.removeItem(at: work) }
        let series = TestSupport.fixturesDirectory.appendingPathComponent("dicom/series")
        func pack(_ name: String) throws -> [UInt8] {
            let folder = series.appendingPathComponent(name)
            let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted().prefix(3)
            return DICOMFuzzInput.pack(try names.map { [UInt8](try Data(contentsOf: folder.appendingPathComponent($0))) })
        }
        let good = try pack("axial_implicit_le").withUnsafeBytes { DICOMFuzzHarness.run($0, in: work) }
        #expect(good.volumes == 1 && good.violations.isEmpty && good.refusals.isEmpty, "\(good)")
        let gantry = try pack("gantry_tilt").withUnsafeBytes { DICOMFuzzHarness.run($0, in: work) }
        #expect(gantry.volumes == 0 && gantry.violations.isEmpty, "\(gantry)")
        #expect(gantry.refusals.count == 1 && gantry.refusals[0].hasPrefix("$FOLDER: gantry tilt"), "\(gantry)")
        // The invariants catch a volume that is not the series' (a wrong grid and a non-finite voxel).
        let location = try #require(DICOMSeriesLocation(path: series.appendingPathComponent("axial_rle").path))
        let s = try DICOMFolder.series(at: location)
        var volume = try s.readVolume()
        volume.voxels[5] = .nan
        #expect(DICOMFuzzHarness.invariantViolations(series: s, volume: volume).contains { $0.hasPrefix("voxel 5 is nan") })
        volume.grid = GridSize(volume.grid.ny, volume.grid.nx, volume.grid.nz)
        #expect(DICOMFuzzHarness.invariantViolations(series: s, volume: volume).contains { $0.contains("is not the series grid") })
    }
}
