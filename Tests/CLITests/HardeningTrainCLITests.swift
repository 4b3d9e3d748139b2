import Foundation
import Testing
import TestSupport

/// Issue 16, training data honesty through the built `mr2ct train`: the hostile NIfTI set in the MR folder is
/// reported file by file once preparation is done and the used counts are exact; a full disk under the slice cache
/// is an error with nothing recorded; a finished run can be extended; resuming with another --threads continues
/// the same losses.
@Suite("hardening train (binary)", .serialized)
struct HardeningTrainCLITests {
    static func arguments(_ data: (mr: URL, ct: URL), run: URL, iterations: Int, threads: Int = 1) -> [String] {
        ["train", "--mr", data.mr.path, "--ct", data.ct.path, "--run", run.path,
         "--slice-size", "32", "--ngf", "4", "--ndf", "4", "--residual-blocks", "1", "--discriminator-layers", "2",
         "--pool-size", "2", "--iterations", String(iterations), "--checkpoint-every", "2", "--sample-every", "100",
         "--threads", String(threads), "--seed", "3", "--quiet"]
    }

    static func losses(_ run: URL) -> [String] {
        // Every logged value but the step time.
        TrainCLITests.trainLines(run).map { line in
            line.keys.sorted().filter { $0 != "seconds" }.map { "\($0)=\(line[$0]!)" }.joined(separator: ",")
        }
    }

    @Test func theHostileSetInTheMRFolderIsReportedAndTheCountsAreExact() throws {
        let root = try TestSupport.makeTemporaryDirectory("hard-train-hostile")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let materialized = try MalformedNIfTI.materializeAll(in: data.mr)
        let listed = try FileManager.default.contentsOfDirectory(atPath: data.mr.path)
            .filter { !$0.hasPrefix(".") && ($0.hasSuffix(".nii") || $0.hasSuffix(".nii.gz") || $0.hasSuffix(".hdr") || $0.hasSuffix(".hdr.gz")) }
        let hostile = listed.filter { !$0.hasPrefix("mr_") }
            .filter { name in !FileManagerIsDirectory(data.mr.appendingPathComponent(name)) }
        #expect(hostile.count >= 40, "\(hostile.count) hostile files listed of \(materialized.count) cases")
        let run = root.appendingPathComponent("run")
        var arguments = Self.arguments(data, run: run, iterations: 2)
        arguments.removeLast()   // --quiet: the report is what is tested
        let r = try TestSupport.runMR2CT(arguments)
        #expect(r.status == 0, "\(r.stderr)")
        for name in hostile {
            #expect(r.stderr.contains("skipped \(data.mr.appendingPathComponent(name).path): "), "\(name) not reported")
        }
        #expect(r.stderr.contains("using 2 of \(hostile.count + 2) MR volumes"), "\(r.stderr)")
        #expect(r.stderr.contains("from 2 MR and 2 CT volumes"))
        // Reported after preparation: the usage line follows every skipped line.
        let lines = r.stderr.split(separator: "\n")
        let usage = try #require(lines.firstIndex { $0.contains("using 2 of") })
        #expect(lines.lastIndex { $0.hasPrefix("mr2ct: skipped ") }.map { $0 < usage } == true)
    }

    static var canMountTmpfs: Bool {
        guard getuid() == 0 else { return false }
        guard let probe = try? TestSupport.makeTemporaryDirectory("tmpfs-probe") else { return false }
        defer { try? FileManager.default.removeItem(at: probe) }
        let status = (try? TestSupport.run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe.path]))?.status
        guard status == 0 else { return false }
        _ = try? TestSupport.run(URL(fileURLWithPath: "/bin/umount"), [probe.path])
        return true
    }

    /// ENOSPC (a real full file system, tmpfs of 64 KiB under run/cache): exit 1 naming the volume, no config.json
    /// recorded, so that a later run on a free disk starts cleanly instead of finding "the training data changed".
    @Test(.enabled(if: canMountTmpfs, "needs root to mount a small tmpfs"))
    func aFullDiskUnderTheCacheIsAnErrorAndNothingIsRecorded() throws {
        let root = try TestSupport.makeTemporaryDirectory("hard-train-enospc")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root, mrCount: 3, ctCount: 3)
        let run = root.appendingPathComponent("run")
        let cache = run.appendingPathComponent("cache")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        try #require(try TestSupport.run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=64k", "tmpfs", cache.path]).status == 0)
        defer { _ = try? TestSupport.run(URL(fileURLWithPath: "/bin/umount"), [cache.path]) }
        let r = try TestSupport.runMR2CT(Self.arguments(data, run: run, iterations: 2))
        #expect(r.status == 1)
        #expect(r.stderr.contains("cannot write the slice cache") && r.stderr.contains("nothing was recorded"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: run.appendingPathComponent("config.json").path))
        _ = try TestSupport.run(URL(fileURLWithPath: "/bin/umount"), [cache.path])
        let again = try TestSupport.runMR2CT(Self.arguments(data, run: run, iterations: 2))
        #expect(again.status == 0, "\(again.stderr)")
    }

    /// ENOSPC for conversion outputs: the volume fails with a clear error, no partial file is left.
    @Test(.enabled(if: canMountTmpfs, "needs root to mount a small tmpfs"))
    func aFullDiskUnderConversionOutputsFailsCleanly() throws {
        let root = try TestSupport.makeTemporaryDirectory("hard-convert-enospc")
        defer { try? FileManager.default.removeItem(at: root) }
        let out = root.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try #require(try TestSupport.run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=16k", "tmpfs", out.path]).status == 0)
        defer { _ = try? TestSupport.run(URL(fileURLWithPath: "/bin/umount"), [out.path]) }
        let input = TestSupport.fixturesDirectory.appendingPathComponent("conversion/mr_lps_int16.nii.gz")
        let model = HardeningCLITests.tinyModel.path
        let r = try TestSupport.runMR2CT(["convert", "--model", model, input.path, "-o", out.path, "--quiet", "--name", "{stem}_sct.nii"])
        #expect(r.status == 1)
        let error = try #require(try HardeningCLITests.lines(r.stdout).first?["error"] as? String)
        #expect(error.contains("No space left on device"), "\(error)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).isEmpty)
    }

    /// A finished 4-iteration run extended to 8 (`--iterations 8`) continues from its checkpoint on the re-planned
    /// schedule; shortening is refused; the extension resumed on 2 threads gives the 1-thread losses.
    @Test func aFinishedRunCanBeExtendedAndResumedOnOtherThreads() throws {
        let root = try TestSupport.makeTemporaryDirectory("hard-train-extend")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: root)
        let run = root.appendingPathComponent("run")
        #expect(try TestSupport.runMR2CT(Self.arguments(data, run: run, iterations: 4)).status == 0)
        let shorter = try TestSupport.runMR2CT(Self.arguments(data, run: run, iterations: 3))
        #expect(shorter.status == 1 && shorter.stderr.contains("can only be extended"), "\(shorter.stderr)")
        var extend = Self.arguments(data, run: run, iterations: 8, threads: 2)
        extend.removeLast()
        let extended = try TestSupport.runMR2CT(extend)
        #expect(extended.status == 0, "\(extended.stderr)")
        #expect(extended.stderr.contains("extending the run from 4 to 8 iterations"), "\(extended.stderr)")
        let lines = TrainCLITests.trainLines(run)
        #expect(lines.map { $0["iteration"] as? Int } == Array(1...8))
        // Re-planned: iterations 5…8 run at the 8-iteration schedule's rates (constant to 4, then linear decay).
        let rates = lines.compactMap { $0["lr"] as? Double }
        #expect(rates.count == 8)
        #expect(abs(rates[4] - 2e-4 * (1 - 1.0 / 5)) < 1e-9 && abs(rates[7] - 2e-4 * (1 - 4.0 / 5)) < 1e-9, "\(rates)")
        // The same 4 + 4 on one thread in another folder: identical losses, whatever --threads the extension used.
        let other = root.appendingPathComponent("other")
        #expect(try TestSupport.runMR2CT(Self.arguments(data, run: other, iterations: 4)).status == 0)
        #expect(try TestSupport.runMR2CT(Self.arguments(data, run: other, iterations: 8)).status == 0)
        #expect(Self.losses(run) == Self.losses(other))
        #expect(Self.losses(run).count == 8)
    }
}

func FileManagerIsDirectory(_ url: URL) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
}
