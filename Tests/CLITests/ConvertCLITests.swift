import Foundation
import Testing
import NIfTI
import Safetensors
import TestSupport

/// `mr2ct convert` run as a user runs it: the built binary, real files, JSON lines, exit codes.
@Suite(.serialized)
struct ConvertCLITests {
    static var fixtures: URL { TestSupport.fixturesDirectory.appendingPathComponent("conversion") }
    static var model: String { fixtures.appendingPathComponent("tiny_G_A.safetensors").path }
    static var realData: URL { TestSupport.packageRoot.appendingPathComponent("SampleData/real") }

    /// A folder with the two fixture MRs and a real one.
    static func inputFolder(_ root: URL) throws -> URL {
        let folder = root.appendingPathComponent("mr")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["mr_lps_int16.nii.gz", "mr_ras_float.nii"] {
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        try FileManager.default.copyItem(at: realData.appendingPathComponent("someones_anatomy.nii.gz"),
                                         to: folder.appendingPathComponent("someones_anatomy.nii.gz"))
        return folder
    }

    /// Copies of the small fixture MR under `count` names.
    static func copies(_ root: URL, count: Int, name: String = "many") throws -> URL {
        let folder = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for n in 0..<count {
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent("mr_lps_int16.nii.gz"),
                                             to: folder.appendingPathComponent(String(format: "p%02d.nii.gz", n)))
        }
        return folder
    }

    /// The JSON objects of stdout, each line required to parse on its own.
    static func lines(_ stdout: String) throws -> [[String: Any]] {
        try stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
    }

    static func files(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    @Test func aFolderIsConvertedToInt16VolumesOnExactlyTheInputGrids() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = try Self.inputFolder(root)
        let out = root.appendingPathComponent("out")
        let preview = root.appendingPathComponent("png")
        let r = try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path, "-o", out.path, "--preview", preview.path])
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try Self.lines(r.stdout)
        #expect(objects.count == 3)
        for object in objects {
            #expect(Set(object.keys).isSuperset(of: ["input", "output", "seconds", "status", "error"]))
            #expect(object["status"] as? String == "ok")
            #expect(object["error"] is NSNull)
            #expect((object["seconds"] as? Double).map { $0 >= 0 } == true)
            let inURL = URL(fileURLWithPath: try #require(object["input"] as? String))
            let outURL = URL(fileURLWithPath: try #require(object["output"] as? String))
            #expect(outURL.lastPathComponent == NIfTIFile.stem(of: inURL) + "_sct.nii.gz")
            let a = try NIfTIFile.readHeader(inURL), b = try NIfTIFile.readHeader(outURL)
            #expect(b.datatype == .int16)
            // dim[0...3]; the unused dim[4...7] are 1 in nibabel's files and 0 in nifti_clib's (NIfTI ignores them).
            #expect(b.dim[0...3] == a.dim[0...3])
            #expect(b.pixdim == a.pixdim)
            #expect(b.qformCode == a.qformCode && b.sformCode == a.sformCode)
            #expect(b.quaternB == a.quaternB && b.quaternC == a.quaternC && b.quaternD == a.quaternD)
            #expect(b.qoffset == a.qoffset)
            #expect(b.srow == a.srow)
            #expect(b.xyztUnits == a.xyztUnits)
            #expect(b.sclSlope == 1 && b.sclInter == 0)
            let sct = try NIfTIFile.read(outURL)
            #expect(sct.affine == (try NIfTIFile.read(inURL)).affine)
            #expect(sct.voxels.allSatisfy { $0 >= -1024 && $0 <= 3000 && $0 == $0.rounded() })
            #expect(sct.voxels.contains(-1024) && sct.voxels.contains { $0 > -1024 })
            let png = try Data(contentsOf: try #require((object["preview"] as? String).map(URL.init(fileURLWithPath:))))
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        }
        #expect(r.stderr.contains("convert"))
        #expect(Self.files(out) == ["mr_lps_int16_sct.nii.gz", "mr_ras_float_sct.nii.gz", "someones_anatomy_sct.nii.gz"])
    }

    @Test func aBadFileFailsAloneAndTheOthersAreConverted() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-bad")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = try Self.copies(root, count: 2)
        let good = try Data(contentsOf: Self.fixtures.appendingPathComponent("mr_lps_int16.nii.gz"))
        try good.prefix(good.count / 2).write(to: input.appendingPathComponent("a_truncated.nii.gz"))
        try Data("not a volume".utf8).write(to: input.appendingPathComponent("b_text.nii"))
        var header = try Data(contentsOf: Self.fixtures.appendingPathComponent("mr_ras_float.nii"))
        header[40] = 0xFF; header[41] = 0x7F   // dim[0] = 32767
        try header.write(to: input.appendingPathComponent("c_baddim.nii"))
        let out = root.appendingPathComponent("out")
        let r = try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path,
                                          root.appendingPathComponent("absent.nii.gz").path, "-o", out.path])
        #expect(r.status == 1)
        let objects = try Self.lines(r.stdout)
        #expect(objects.count == 6)
        let failed = objects.filter { $0["status"] as? String == "error" }
        #expect(failed.count == 4)
        for f in failed {
            let message = try #require(f["error"] as? String)
            #expect(!message.isEmpty && !message.contains("\n"))
            let input = try #require(f["input"] as? String)
            #expect(r.stderr.contains("mr2ct: \(input): "))
        }
        #expect(Self.files(out) == ["p00_sct.nii.gz", "p01_sct.nii.gz"])
    }

    /// Issue 9: every malformed or hostile NIfTI of the shared generator, in one batch with good files: each is one
    /// failed JSON line naming it, the good ones are converted, nothing else is written, exit status 1.
    @Test func everyMalformedNIfTIFailsAloneInABatch() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-malformed")
        defer { try? FileManager.default.removeItem(at: root) }
        let bad = root.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
        let cases = try MalformedNIfTI.materializeAll(in: bad)
        #expect(cases.count >= 30)
        let good = try Self.copies(root, count: 2)
        let out = root.appendingPathComponent("out")
        let list = ([good.appendingPathComponent("p00.nii.gz")] + cases.map(\.url) + [good.appendingPathComponent("p01.nii.gz")])
            .map(\.path).joined(separator: "\n")
        let r = try TestSupport.runMR2CT(["convert", "--model", Self.model, "-", "-o", out.path], stdin: list)
        #expect(r.status == 1)
        let objects = try Self.lines(r.stdout)
        let byInput = Dictionary(objects.map { ($0["input"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        for (c, url) in cases {
            let object = try #require(byInput[url.standardizedFileURL.path], "\(c.name) has no JSON line")
            #expect(object["status"] as? String == "error", "\(c.name)")
            let reason = object["error"] as? String ?? ""
            #expect(!reason.isEmpty && !reason.contains("\n"), "\(c.name): \(reason)")
            if !c.fourDimensionalOnly && c.folders.isEmpty {
                #expect(reason.contains(c.expectedReason), "\(c.name): \(reason)")
            }
        }
        #expect(objects.filter { $0["status"] as? String == "ok" }.count == 2)
        #expect(Self.files(out) == ["p00_sct.nii.gz", "p01_sct.nii.gz"])
    }

    @Test func pathsAreReadFromStandardInput() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-stdin")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = try Self.copies(root, count: 3)
        let out = root.appendingPathComponent("out")
        let list = "\(input.path)/p02.nii.gz\n\n# skipped\n\(input.path)/p00.nii.gz\n\(input.path)/p02.nii.gz\n"
        let r = try TestSupport.runMR2CT(["convert", "--model", Self.model, "-", "-o", out.path, "--name", "{stem}-ct.nii"],
                                         stdin: list)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.lines(r.stdout).compactMap { $0["input"] as? String } == ["\(input.path)/p00.nii.gz", "\(input.path)/p02.nii.gz"])
        #expect(Self.files(out) == ["p00-ct.nii", "p02-ct.nii"])
    }

    @Test func shardsCoverTheListExactlyOnce() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-shard")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = try Self.copies(root, count: 7)
        let out = root.appendingPathComponent("out")
        var seen: [String] = []
        for i in 0..<3 {
            let r = try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path, "-o", out.path, "--shard", "\(i)/3"])
            #expect(r.status == 0, "\(r.stderr)")
            let inputs = try Self.lines(r.stdout).compactMap { $0["input"] as? String }
            #expect(inputs.count == (i == 0 ? 3 : 2))
            seen += inputs
        }
        #expect(seen.sorted() == (0..<7).map { String(format: "\(input.path)/p%02d.nii.gz", $0) })
        #expect(Self.files(out).count == 7)
        let bad = try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path, "-o", out.path, "--shard", "3/3"])
        #expect(bad.status == 64)
    }

    @Test func existingOutputsAreNeverOverwrittenSilently() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-existing")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = try Self.copies(root, count: 2)
        let out = root.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let placeholder = out.appendingPathComponent("p00_sct.nii.gz")
        try Data("keep me".utf8).write(to: placeholder)
        let base = ["convert", "--model", Self.model, input.path, "-o", out.path]

        let plain = try TestSupport.runMR2CT(base)
        #expect(plain.status == 1)
        let first = try Self.lines(plain.stdout)
        #expect(first.map { $0["status"] as? String } == ["error", "ok"])
        #expect((first[0]["error"] as? String)?.contains("exists") == true)
        #expect(try Data(contentsOf: placeholder) == Data("keep me".utf8))

        let skip = try TestSupport.runMR2CT(base + ["--skip-existing"])
        #expect(skip.status == 0)
        #expect(try Self.lines(skip.stdout).map { $0["status"] as? String } == ["skipped", "skipped"])
        #expect(try Data(contentsOf: placeholder) == Data("keep me".utf8))

        let overwrite = try TestSupport.runMR2CT(base + ["--overwrite"])
        #expect(overwrite.status == 0)
        #expect(try Self.lines(overwrite.stdout).map { $0["status"] as? String } == ["ok", "ok"])
        #expect(try NIfTIFile.readHeader(placeholder).datatype == .int16)

        #expect(try TestSupport.runMR2CT(base + ["--overwrite", "--skip-existing"]).status == 64)
    }

    /// The README's claim for conversion's threads: with two or more `--threads` two generator calls run at once,
    /// one per core on single-threaded kernels, "so the result is the same as with `--threads 1`". With a bundled
    /// model (96², ngf 16) on a held-out phantom, with mirror averaging, both runs write the same voxels, bit for
    /// bit.
    @Test func twoThreadsConvertToTheSameVoxelsAsOne() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-threads")
        defer { try? FileManager.default.removeItem(at: root) }
        let mr = Self.heldout.appendingPathComponent("sub-101.nii.gz").path
        var outputs: [[Float]] = []
        for threads in ["1", "2"] {
            let out = root.appendingPathComponent("t\(threads)")
            let result = try TestSupport.runMR2CT(["convert", "--model", Self.bundled, mr, "-o", out.path, "--threads", threads,
                                                   "--mirror-average", "--quiet"])
            #expect(result.status == 0, "\(result.stderr)")
            outputs.append(try NIfTIFile.read(out.appendingPathComponent("sub-101_sct.nii.gz")).voxels)
        }
        #expect(outputs[0].count == 80 * 96 * 36)
        #expect(outputs[0] == outputs[1])
        // Not trivially equal: the sCT is not one value.
        #expect(Set(outputs[0]).count > 100)
    }

    @Test func planesThreadsMirrorAveragingAndAFolderConvertedIntoItself() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-options")
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try Self.copies(root, count: 2)
        let base = ["convert", "--model", Self.model, folder.path, "-o", folder.path]
        let fused = try TestSupport.runMR2CT(base + ["--planes", "axial,coronal,sagittal", "--threads", "1", "--batch-size", "3",
                                                          "--mirror-average"])
        #expect(fused.status == 0, "\(fused.stderr)")
        #expect(fused.stderr.contains("trained on axial slices"))
        let sct = try NIfTIFile.read(folder.appendingPathComponent("p00_sct.nii.gz"))
        #expect(sct.grid == (try NIfTIFile.read(folder.appendingPathComponent("p00.nii.gz"))).grid)
        // Converting the same folder into itself again: the outputs are not taken as new inputs.
        let again = try TestSupport.runMR2CT(base + ["--skip-existing"])
        #expect(again.status == 0)
        #expect(try Self.lines(again.stdout).map { $0["status"] as? String } == ["skipped", "skipped"])
        #expect(again.stderr.contains("2 input(s) are outputs of other inputs"))
        #expect(Self.files(folder) == ["p00.nii.gz", "p00_sct.nii.gz", "p01.nii.gz", "p01_sct.nii.gz"])
        for bad in [["--planes", "axial,oblique"], ["--threads", "0"], ["--batch-size", "0"], ["--name", "x.nii"]] {
            #expect(try TestSupport.runMR2CT(base + bad).status == 64, "\(bad)")
        }
    }

    @Test func aBadModelIsOneClearErrorAndNothingIsWritten() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-model")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = try Self.copies(root, count: 1)
        let bad = root.appendingPathComponent("bad.safetensors")
        try Data(try Data(contentsOf: URL(fileURLWithPath: Self.model)).prefix(200)).write(to: bad)
        let out = root.appendingPathComponent("out")
        for model in [bad.path, root.path, root.appendingPathComponent("none").path] {
            // Alone or as the second member of an ensemble.
            let r = try TestSupport.runMR2CT(["convert", "--model", Self.model, "--model", model, input.path, "-o", out.path])
            #expect(r.status == 1)
            #expect(r.stdout.isEmpty)
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("mr2ct: \(model)"), "\(r.stderr)")
        }
        #expect(Self.files(out).isEmpty)
        #expect(try TestSupport.runMR2CT(["convert", input.path, "-o", out.path]).status == 64)
        // The same model twice is an ensemble of one model: the same output as the model alone.
        let once = try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path, "-o", out.path])
        let single = try NIfTIFile.read(out.appendingPathComponent("p00_sct.nii.gz"))
        let twice = try TestSupport.runMR2CT(["convert", "--model", Self.model, "--model", Self.model, input.path, "-o", out.path, "--overwrite"])
        #expect(once.status == 0 && twice.status == 0, "\(twice.stderr)")
        #expect(try NIfTIFile.read(out.appendingPathComponent("p00_sct.nii.gz")).voxels == single.voxels)
    }

    /// Issue 9: a file-size limit (`ulimit -f`) hit while writing is a per-volume error; an existing output being
    /// replaced with --overwrite is left intact and no temporary file remains.
    @Test func aFileSizeLimitIsAClearErrorAndDamagesNothing() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-ulimit")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = root.appendingPathComponent("mr")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.realData.appendingPathComponent("someones_anatomy.nii.gz"),
                                         to: input.appendingPathComponent("s.nii.gz"))
        let out = root.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let existing = out.appendingPathComponent("s_sct.nii")
        try Data("previous result".utf8).write(to: existing)
        // 16 blocks of 512 bytes: far below the 427 kB uncompressed output.
        let command = "ulimit -f 16; exec \"$0\" convert --model \"$1\" \"$2\" -o \"$3\" --name '{stem}_sct.nii' --overwrite"
        let r = try TestSupport.run(URL(fileURLWithPath: "/bin/bash"),
                                    ["-c", command, TestSupport.mr2ctExecutable.path, Self.model, input.path, out.path])
        #expect(r.status == 1, "\(r.stderr)")
        let object = try #require(try Self.lines(r.stdout).first)
        #expect(object["status"] as? String == "error")
        #expect((object["error"] as? String)?.lowercased().contains("too large") == true, "\(object)")
        #expect(try Data(contentsOf: existing) == Data("previous result".utf8))
        #expect(Self.files(out) == ["s_sct.nii"])
    }

    /// Issue 9: a conversion killed with SIGKILL at any moment leaves no partial file under an output name, and
    /// a rerun with --skip-existing completes the batch and clears the dead process's temporary files.
    @Test func aKilledConversionLeavesNoPartialOutput() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-kill")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = root.appendingPathComponent("mr")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        for n in 0..<6 {
            try FileManager.default.copyItem(at: Self.realData.appendingPathComponent("someones_anatomy.nii.gz"),
                                             to: input.appendingPathComponent("s\(n).nii.gz"))
        }
        let clock = ContinuousClock()
        let full = root.appendingPathComponent("full")
        let start = clock.now
        #expect(try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path, "-o", full.path]).status == 0)
        let duration = start.duration(to: clock.now)
        for (n, fraction) in [0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95].enumerated() {
            let out = root.appendingPathComponent("out\(n)")
            // The kill must land on a running conversion (issue 16), or the attempt proves nothing: one that finds
            // the process already done is repeated at half the delay.
            var delay = (duration * fraction) / .seconds(1), landed = false
            for _ in 0..<5 where !landed {
                try? FileManager.default.removeItem(at: out)
                let process = Process()
                process.executableURL = TestSupport.mr2ctExecutable
                process.arguments = ["convert", "--model", Self.model, input.path, "-o", out.path]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                Thread.sleep(forTimeInterval: delay)
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                landed = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
                delay /= 2
            }
            #expect(landed, "no kill at fraction \(fraction) hit a running conversion")
            for name in Self.files(out) where !name.hasPrefix(".tmp-") {
                // Anything under a final name is complete and identical to the uninterrupted run's output.
                let written = try NIfTIFile.read(out.appendingPathComponent(name))
                let reference = try NIfTIFile.read(full.appendingPathComponent(name))
                #expect(written.header == reference.header && written.voxels == reference.voxels,
                        "\(name) after kill at \(fraction)")
            }
            let rerun = try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path, "-o", out.path, "--skip-existing"])
            #expect(rerun.status == 0, "\(rerun.stderr)")
            #expect(Self.files(out) == Self.files(full), "after kill at \(fraction)")
        }
    }

    // MARK: QA, --mask, --uncertainty, --strict (issue 15)

    static var bundled: String { TestSupport.packageRoot.appendingPathComponent("SampleData/model/phantom_G_A.safetensors").path }
    static var bundled2: String { TestSupport.packageRoot.appendingPathComponent("SampleData/model/phantom_G_A_2.safetensors").path }
    static var heldout: URL { TestSupport.packageRoot.appendingPathComponent("SampleData/phantoms/heldout/mr") }

    @Test func everyConvertedVolumeHasAQAObjectAndACTGivenAsMRIsFlaggedOrWithStrictRefused() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-qa")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = root.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.heldout.appendingPathComponent("sub-102.nii.gz"), to: input.appendingPathComponent("sub-102.nii.gz"))
        try FileManager.default.copyItem(at: Self.realData.appendingPathComponent("example_ct_sm_3mm.nii.gz"),
                                         to: input.appendingPathComponent("ct.nii.gz"))
        let out = root.appendingPathComponent("out")
        let r = try TestSupport.runMR2CT(["convert", "--model", Self.bundled, input.path, "-o", out.path,
                                          "--preview", root.appendingPathComponent("png").path])
        #expect(r.status == 0, "\(r.stderr)")
        let objects = try Self.lines(r.stdout)
        #expect(objects.count == 2)
        for object in objects {
            let qa = try #require(object["qa"] as? [String: Any])
            #expect(Set(qa.keys) == ["bodyVoxels", "bodyInsideField", "bodyAir", "bodyDense", "tissues", "intensityDistance",
                                     "textureDistance", "histogramLimit", "warnings"])
            #expect(qa["bodyInsideField"] as? Double == 1)
            let tissues = try #require(qa["tissues"] as? [String: [String: Any]])
            let sum = tissues.values.compactMap { $0["fraction"] as? Double }.reduce(0, +)
            #expect(abs(sum - 1) < 1e-5)
            let codes = try #require(qa["warnings"] as? [[String: Any]]).compactMap { $0["code"] as? String }
            let isCT = (object["input"] as? String)?.hasSuffix("ct.nii.gz") == true
            #expect(codes == (isCT ? ["input_unlike_training"] : []), "\(object)")
            // The PNG's height (IHDR, big-endian at byte 20) exceeds the slice's rows: the QA lines are below it.
            let png = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try #require(object["preview"] as? String))))
            let height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
            let mrGrid = try NIfTIFile.readHeader(URL(fileURLWithPath: try #require(object["input"] as? String))).dim
            #expect(height >= Int(mrGrid[2]) + 27, "preview height \(height)")
        }
        let strict = try TestSupport.runMR2CT(["convert", "--model", Self.bundled, input.path, "-o", root.appendingPathComponent("strict").path,
                                               "--strict"])
        #expect(strict.status == 1)
        let lines = try Self.lines(strict.stdout)
        let ct = try #require(lines.first { ($0["input"] as? String)?.hasSuffix("ct.nii.gz") == true })
        #expect(ct["status"] as? String == "error")
        #expect((ct["error"] as? String)?.contains("input_unlike_training") == true)
        #expect(ct["qa"] is [String: Any])
        #expect(Self.files(root.appendingPathComponent("strict")) == ["sub-102_sct.nii.gz"], "the refused volume's output is not written")
    }

    @Test func userMasksByFileAndByFolderAndTheirMisuse() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-mask")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = try Self.copies(root, count: 2)
        let mr = try NIfTIFile.read(input.appendingPathComponent("p00.nii.gz"))
        // A mask of everything but the first slab (k = 0).
        let masks = root.appendingPathComponent("masks")
        try FileManager.default.createDirectory(at: masks, withIntermediateDirectories: true)
        var inside = [Float](repeating: 1, count: mr.grid.count)
        for j in 0..<mr.grid.ny { for i in 0..<mr.grid.nx { inside[mr.grid.index(i, j, 0)] = 0 } }
        for name in ["p00_mask.nii.gz", "p01_mask.nii.gz"] {
            try NIfTIFile.write(mr.replacingVoxels(inside), to: masks.appendingPathComponent(name))
        }
        let out = root.appendingPathComponent("out")
        let r = try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path, "-o", out.path, "--mask", masks.path])
        #expect(r.status == 0, "\(r.stderr)")
        for name in ["p00_sct.nii.gz", "p01_sct.nii.gz"] {
            let sct = try NIfTIFile.read(out.appendingPathComponent(name))
            for v in 0..<sct.voxels.count {
                if inside[v] == 0 { #expect(sct.voxels[v] == -1024) }
            }
            #expect(sct.voxels.filter { $0 > -1024 }.count > mr.grid.count / 2, "the mask is far larger than the head")
        }
        // One mask file for two inputs: usage error. A mask on another grid: one error naming both files.
        let single = try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path, "-o", out.path, "--overwrite",
                                               "--mask", masks.appendingPathComponent("p00_mask.nii.gz").path])
        #expect(single.status == 64)
        #expect(single.stderr.contains("--mask"))
        let other = root.appendingPathComponent("other.nii.gz")
        try NIfTIFile.write(try NIfTIFile.read(Self.fixtures.appendingPathComponent("mr_ras_float.nii")), to: other)
        let p00 = input.appendingPathComponent("p00.nii.gz").path
        let wrong = try TestSupport.runMR2CT(["convert", "--model", Self.model, p00, "-o", out.path, "--overwrite", "--mask", other.path])
        #expect(wrong.status == 1)
        let line = try #require(try Self.lines(wrong.stdout).first)
        let message = try #require(line["error"] as? String)
        #expect(message.contains(other.path) && message.contains(p00) && message.contains("size"), "\(message)")
        #expect(wrong.stderr.split(separator: "\n").filter { $0.hasPrefix("mr2ct: ") && !$0.contains("note:") }.count == 1)
    }

    @Test func uncertaintyMapsAreWrittenOnTheMRsGridAndRefusedForASinglePrediction() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-sd")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = try Self.copies(root, count: 2)
        let out = root.appendingPathComponent("out")
        let refused = try TestSupport.runMR2CT(["convert", "--model", Self.model, input.path, "-o", out.path,
                                                "--uncertainty", root.appendingPathComponent("sd").path])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("--uncertainty needs more than one prediction"))
        let r = try TestSupport.runMR2CT(["convert", "--model", Self.model, "--mirror-average", input.path, "-o", out.path,
                                          "--uncertainty", root.appendingPathComponent("sd").path])
        #expect(r.status == 0, "\(r.stderr)")
        for object in try Self.lines(r.stdout) {
            let sdURL = URL(fileURLWithPath: try #require(object["uncertainty"] as? String))
            #expect(sdURL.lastPathComponent.hasSuffix("_sct_sd.nii.gz"))
            let header = try NIfTIFile.readHeader(sdURL)
            #expect(header.datatype == .float32)
            let mr = try NIfTIFile.read(URL(fileURLWithPath: try #require(object["input"] as? String)))
            let sd = try NIfTIFile.read(sdURL)
            #expect(sd.grid == mr.grid && sd.affine == mr.affine)
            #expect(sd.voxels.allSatisfy { $0 >= 0 && $0.isFinite } && sd.voxels.contains { $0 > 0 } && sd.voxels.contains(0))
        }
        // A single file for several inputs is a usage error; for one input it is the file written.
        let many = try TestSupport.runMR2CT(["convert", "--model", Self.model, "--mirror-average", input.path, "-o", out.path,
                                             "--overwrite", "--uncertainty", root.appendingPathComponent("one.nii.gz").path])
        #expect(many.status == 64)
        let one = try TestSupport.runMR2CT(["convert", "--model", Self.model, "--model", Self.model, input.appendingPathComponent("p00.nii.gz").path,
                                            "-o", out.path, "--overwrite", "--uncertainty", root.appendingPathComponent("one.nii.gz").path])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("one.nii.gz").path))
    }

    @Test func histogramStoresTheTrainingMRHistogramsAndKeepsTheWeights() throws {
        let root = try TestSupport.makeTemporaryDirectory("convert-cli-histogram")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = try Self.copies(root, count: 2)
        let stamped = root.appendingPathComponent("stamped.safetensors")
        let r = try TestSupport.runMR2CT(["histogram", "--model", Self.model, input.path, "-o", stamped.path])
        #expect(r.status == 0, "\(r.stderr)")
        let line = try #require(try Self.lines(r.stdout).first)
        #expect(line["volumes"] as? Int == 2)
        let before = try SafetensorsFile.read(URL(fileURLWithPath: Self.model)), after = try SafetensorsFile.read(stamped)
        #expect(after.names == before.names)
        for name in before.names { #expect(try after.tensor(named: name).values == before.tensor(named: name).values) }
        var metadata = after.metadata
        let removed = metadata.removeValue(forKey: "mr_histogram")
        let histogram = try #require(removed)
        #expect(metadata == before.metadata)
        #expect(histogram.contains("differenceCounts"))
        // The stamped model converts with an input check; an existing output needs --overwrite.
        let converted = try TestSupport.runMR2CT(["convert", "--model", stamped.path, input.appendingPathComponent("p00.nii.gz").path,
                                                  "-o", root.appendingPathComponent("out").path])
        let qa = try #require(try Self.lines(converted.stdout).first?["qa"] as? [String: Any])
        #expect(qa["intensityDistance"] as? Double == 0 && qa["textureDistance"] as? Double == 0, "its own training MR")
        let again = try TestSupport.runMR2CT(["histogram", "--model", Self.model, input.path, "-o", stamped.path])
        #expect(again.status == 1 && again.stderr.contains("exists"))
    }
}
