import Foundation
import NIfTI
import Testing
import TestSupport

/// Issue 16, the hostile run's reproductions through the built `mr2ct`: each gives one clear line and exit 1 (64
/// for usage) or the documented correct result; nothing crashes, hangs or loses data.
@Suite("hardening (binary)", .serialized)
struct HardeningCLITests {
    static var fixtures: URL { TestSupport.fixturesDirectory.appendingPathComponent("conversion") }
    static var tinyModel: URL { fixtures.appendingPathComponent("tiny_G_A.safetensors") }

    static func lines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// The tiny model with its metadata entry `key` (a JSON object) changed by `change`.
    static func model(in dir: URL, name: String, key: String, _ change: (inout [String: Any]) -> Void) throws -> URL {
        let (header, body) = SafetensorsCLITests.split(try Data(contentsOf: tinyModel))
        var h = header
        var metadata = try #require(h["__metadata__"] as? [String: String])
        let text = try #require(metadata[key])
        var object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        change(&object)
        metadata[key] = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        h["__metadata__"] = metadata
        let url = dir.appendingPathComponent(name)
        try SafetensorsCLITests.join(h, body).write(to: url)
        return url
    }

    /// A head-like MR (20 × 20 × 4) whose header stores its geometry in `units` (xyzt_units), with 1.5 mm voxels.
    static func mr(in dir: URL, name: String, unitsCode: Int = 2, millimetresPerUnit: Double = 1, spacing: Double = 1.5) throws -> URL {
        let grid = GridSize(20, 20, 4)
        var voxels = [Float](repeating: 0, count: grid.count)
        for k in 0..<4 { for j in 4..<16 { for i in 3..<17 { voxels[grid.index(i, j, k)] = Float(200 + 3 * i + 5 * j + k) } } }
        var volume = Volume(grid: grid, voxels: voxels, affine: .scaling(SIMD3(spacing, spacing, 2 * spacing)))
        let s = 1 / millimetresPerUnit
        for d in 1...3 { volume.header.pixdim[d] *= s }
        volume.header.srow = volume.header.srow.map { $0 * s }
        volume.header.qoffset *= s
        volume.header.xyztUnits = unitsCode
        let url = dir.appendingPathComponent(name)
        try NIfTIFile.write(volume, to: url)
        return url
    }

    /// Runs `mr2ct` and kills it after `seconds` (a hang is a failure, not a stuck suite).
    static func runWithTimeout(_ arguments: [String], seconds: Double = 60) throws -> (result: Outcome, timedOut: Bool) {
        let flag = TimeoutFlag()
        let process = Process()
        process.executableURL = TestSupport.mr2ctExecutable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
            if process.isRunning { flag.set(); kill(pid, SIGKILL) }
        }
        let errData = LockedData()
        let thread = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        thread.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errData.isSet { usleep(1000) }
        return (Outcome(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                        stderr: String(decoding: errData.value, as: UTF8.self)), flag.isSet)
    }

    // MARK: 1. Derived sizes

    /// pixdim 10⁶ mm resampled to the model's 2 mm would ask for terabytes: one NDJSON error, the batch goes on.
    @Test func hugeVoxelsResampledForTheModelAreRefusedBeforeAllocating() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-size")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try Self.model(in: dir, name: "spaced.safetensors", key: "preprocessing") { $0["targetSpacing"] = 2 }
        var spec = MalformedNIfTI.Spec()
        spec.dim = [3, 8, 8, 2, 1, 1, 1, 1]
        spec.pixdim = [1, 1e6, 1e6, 1e6, 1, 1, 1, 1]
        spec.srow = [[1e6, 0, 0, 0], [0, 1e6, 0, 0], [0, 0, 1e6, 0]]
        let inputs = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        try Data(MalformedNIfTI.nii(spec)).write(to: inputs.appendingPathComponent("big_spacing.nii"))
        _ = try Self.mr(in: inputs, name: "good.nii.gz")
        let r = try TestSupport.runMR2CT(["convert", "--model", model.path, inputs.path, "-o", dir.appendingPathComponent("o").path, "--quiet"])
        #expect(r.status == 1)
        let objects = try Self.lines(r.stdout)
        #expect(objects.count == 2)
        let bad = try #require(objects.first { ($0["input"] as? String)?.hasSuffix("big_spacing.nii") == true })
        let error = try #require(bad["error"] as? String)
        #expect(error.hasPrefix(inputs.appendingPathComponent("big_spacing.nii").path + ": "), "\(error)")
        #expect(error.contains("above the limit of 8192 per side"), "\(error)")
        #expect(objects.contains { $0["status"] as? String == "ok" })
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test func modelMetadataBeyondLimitsIsOneLine() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-meta")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.mr(in: dir, name: "mr.nii.gz")
        let fine = try Self.model(in: dir, name: "fine.safetensors", key: "preprocessing") { $0["targetSpacing"] = 1e-4 }
        let wide = try Self.model(in: dir, name: "wide.safetensors", key: "generator") { $0["ngf"] = 1_000_000 }
        for (model, expected) in [(fine, "preprocessing configuration: targetSpacing must be between 0.01 and 100 mm, not 0.0001"),
                                  (wide, "generator ngf is 1000000, outside 1…256")] {
            let r = try TestSupport.runMR2CT(["convert", "--model", model.path, input.path, "-o", dir.appendingPathComponent("o").path])
            #expect(r.status == 1)
            #expect(r.stderr == "mr2ct: \(model.path): " + (model == wide ? "metadata: " : "") + expected + "\n", "\(r.stderr)")
            #expect(!r.stderr.contains("Configuration("))
        }
    }

    @Test func trainSpacingBeyondLimitsIsAUsageError() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-train-spacing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try TrainingVolumes.writeUnpairedFolders(in: dir)
        let r = try TestSupport.runMR2CT(["train", "--mr", data.mr.path, "--ct", data.ct.path, "--run",
                                          dir.appendingPathComponent("run").path, "--spacing", "0.0001"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--spacing must be between 0.01 and 100 mm, not 0.0001"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/config.json").path))
    }

    // MARK: 2. Units

    /// The same anatomy stored in µm, mm and m gives the same synthetic CT (the model resamples to 2 mm, so a
    /// misread unit would change every voxel); the output keeps each input's own header.
    @Test func spatialUnitsAreHonouredByConvert() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-units")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try Self.model(in: dir, name: "spaced.safetensors", key: "preprocessing") { $0["targetSpacing"] = 2 }
        let inputs = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        _ = try Self.mr(in: inputs, name: "mm.nii.gz")
        _ = try Self.mr(in: inputs, name: "um.nii.gz", unitsCode: 3, millimetresPerUnit: 0.001)
        _ = try Self.mr(in: inputs, name: "m.nii.gz", unitsCode: 1, millimetresPerUnit: 1000)
        let out = dir.appendingPathComponent("o")
        let r = try TestSupport.runMR2CT(["convert", "--model", model.path, inputs.path, "-o", out.path, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let mm = try NIfTIFile.read(out.appendingPathComponent("mm_sct.nii.gz"))
        for (name, code, pixdim) in [("um", 3, 1500.0), ("m", 1, 0.0015)] {
            let other = try NIfTIFile.read(out.appendingPathComponent("\(name)_sct.nii.gz"))
            #expect(other.voxels == mm.voxels, "\(name)")
            #expect(other.header.xyztUnits == code)
            #expect(abs(other.header.pixdim[1] - pixdim) <= 1e-6 * pixdim)
            #expect(abs(other.spacing.x - 1.5) < 1e-5)
        }
        let info = try TestSupport.runMR2CT(["info", "--json", inputs.appendingPathComponent("um.nii.gz").path])
        let summary = try #require(try Self.lines(info.stdout).first)
        #expect(summary["spatial_units"] as? String == "um")
        #expect(((summary["spacing"] as? [Double]) ?? []).map { ($0 * 1e4).rounded() / 1e4 } == [1.5, 1.5, 3])
    }

    // MARK: 3. Special files

    @Test func specialModelFilesAndVolumesAreRefusedWithoutHanging() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-special")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.mr(in: dir, name: "mr.nii.gz")
        let out = dir.appendingPathComponent("o").path
        for (special, reason) in [(SpecialFile.fifo, "is a FIFO"), (.characterDevice, "is a character device"),
                                  (.symlinkLoop, "symlink loop"), (.socket, "is a socket")] {
            let model = dir.appendingPathComponent("f\(reason.count).safetensors")
            try MalformedNIfTI.makeSpecial(special, at: model)
            let (r, timedOut) = try Self.runWithTimeout(["convert", "--model", model.path, input.path, "-o", out])
            #expect(!timedOut, "convert --model \(special) hung")
            #expect(r.status == 1)
            #expect(r.stderr.hasPrefix("mr2ct: \(model.path): \(reason)") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            let volume = dir.appendingPathComponent("v\(reason.count).nii.gz")
            try MalformedNIfTI.makeSpecial(special, at: volume)
            let (v, volumeTimedOut) = try Self.runWithTimeout(["convert", "--model", Self.tinyModel.path, volume.path, "-o", out])
            #expect(!volumeTimedOut && v.status == 1)
            let volumeError = try #require(try Self.lines(v.stdout).first?["error"] as? String)
            #expect(volumeError.hasPrefix("\(volume.path): \(reason)"), "\(volumeError)")
        }
        let (nifti, _) = try Self.runWithTimeout(["convert", "--model", input.path, input.path, "-o", out])
        #expect(nifti.status == 1)
        #expect(nifti.stderr.contains("is a NIfTI volume, not a model"), "\(nifti.stderr)")
    }

    // MARK: 4. No silent overwrite, never output over input

    @Test func reformatAndMaskNeverReplaceTheirInputAndAskBeforeReplacing() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-overwrite")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.mr(in: dir, name: "mr.nii.gz")
        let original = try Data(contentsOf: input)
        try FileManager.default.linkItem(at: input, to: dir.appendingPathComponent("hardlink.nii.gz"))
        for command in [["reformat", "--datatype", "int16"], ["mask"]] {
            for target in [input.path, "./mr.nii.gz", dir.appendingPathComponent("hardlink.nii.gz").path] {
                for flag in [[], ["--overwrite"]] {
                    let r = try TestSupport.runMR2CT(command + flag + [input.path, target], currentDirectory: dir)
                    #expect(r.status == 1, "\(command) \(target) \(flag)")
                    #expect(r.stderr.contains("is the input itself"), "\(r.stderr)")
                }
            }
            #expect(try Data(contentsOf: input) == original)
            let out = dir.appendingPathComponent("\(command[0]).nii.gz")
            #expect(try TestSupport.runMR2CT(command + [input.path, out.path]).status == 0)
            let first = try Data(contentsOf: out)
            let again = try TestSupport.runMR2CT(command + [input.path, out.path])
            #expect(again.status == 1 && again.stderr.contains("exists (use --overwrite"), "\(again.stderr)")
            #expect(try Data(contentsOf: out) == first)
            #expect(try TestSupport.runMR2CT(command + ["--overwrite", input.path, out.path]).status == 0)
        }
    }

    @Test func phantomRefusesAnOccupiedFolderAndOverwriteRemovesItsOldFiles() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-phantom")
        defer { try? FileManager.default.removeItem(at: dir) }
        let small = ["--subjects", "2", "--size", "24x24x8", "--quiet"]
        #expect(try TestSupport.runMR2CT(["phantom", "--out", dir.path, "--seed", "1", "--outputs", "mr,ct,labels,preview"] + small).status == 0)
        let mrBefore = try Data(contentsOf: dir.appendingPathComponent("mr/sub-001.nii.gz"))
        let refused = try TestSupport.runMR2CT(["phantom", "--out", dir.path, "--seed", "2", "--first", "5"] + small)
        #expect(refused.status == 1 && refused.stderr.contains("--overwrite"), "\(refused.stderr)")
        #expect(try Data(contentsOf: dir.appendingPathComponent("mr/sub-001.nii.gz")) == mrBefore)
        try Data("mine".utf8).write(to: dir.appendingPathComponent("labels/notes.txt"))
        let replaced = try TestSupport.runMR2CT(["phantom", "--out", dir.path, "--seed", "2", "--first", "5", "--overwrite"] + small)
        #expect(replaced.status == 0, "\(replaced.stderr)")
        let names = { (sub: String) in ((try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(sub).path)) ?? []).sorted() }
        #expect(names("mr") == ["sub-005.nii.gz", "sub-006.nii.gz"])
        #expect(names("ct") == ["sub-005.nii.gz", "sub-006.nii.gz"])
        #expect(names("labels") == ["notes.txt"])
        #expect(names("preview") == [])
        // The documented split (MR of some subjects, CT of others, one folder) still needs no flag.
        let split = dir.appendingPathComponent("split")
        #expect(try TestSupport.runMR2CT(["phantom", "--out", split.path, "--outputs", "mr"] + small).status == 0)
        #expect(try TestSupport.runMR2CT(["phantom", "--out", split.path, "--outputs", "ct", "--first", "3"] + small).status == 0)
    }

    // MARK: 6. evaluate

    @Test func evaluateReportsMissingPredictionsAndSaysWhatDiffers() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-eval")
        defer { try? FileManager.default.removeItem(at: dir) }
        let preds = dir.appendingPathComponent("pred"), refs = dir.appendingPathComponent("ref")
        for folder in [preds, refs] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        let grid = GridSize(10, 10, 8)
        let values = (0..<grid.count).map { Float($0 % 7) * 100 - 300 }
        for name in ["a", "b", "c"] {
            try NIfTIFile.write(Volume(grid: grid, voxels: values, affine: .scaling(SIMD3(1, 1, 2))), to: refs.appendingPathComponent("\(name).nii.gz"))
        }
        try NIfTIFile.write(Volume(grid: grid, voxels: values.map { $0 + 10 }, affine: .scaling(SIMD3(1, 1, 2))),
                            to: preds.appendingPathComponent("a_sct.nii.gz"))
        var shifted = Affine.scaling(SIMD3(1, 1, 2))
        shifted[0, 3] = 5
        try NIfTIFile.write(Volume(grid: grid, voxels: values, affine: shifted), to: preds.appendingPathComponent("b_sct.nii.gz"))
        let csv = dir.appendingPathComponent("m.csv")
        let r = try TestSupport.runMR2CT(["evaluate", "--pred", preds.path, "--ref", refs.path, "--csv", csv.path])
        #expect(r.status == 1)
        let objects = try Self.lines(r.stdout)
        #expect(objects.count == 4)
        let missing = try #require(objects.first { ($0["reference"] as? String)?.hasSuffix("c.nii.gz") == true })
        #expect((missing["error"] as? String)?.contains("no prediction for the reference c.nii.gz") == true)
        let b = try #require(objects.first { ($0["prediction"] as? String)?.hasSuffix("b_sct.nii.gz") == true })
        let reason = try #require(b["error"] as? String)
        #expect(reason.hasPrefix(preds.appendingPathComponent("b_sct.nii.gz").path + ": "))
        #expect(reason.contains("same dims 10×10×8, but affine row 1 differs: [1, 0, 0, 5] vs [1, 0, 0, 0]"), "\(reason)")
        #expect(objects.last?["volumes"] as? Int == 1 && objects.last?["failed"] as? Int == 2)
        let rows = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let header = try #require(rows.first)
        let voxels = try #require(header.firstIndex(of: "voxels"))
        for row in rows where row.first == "mean" || row.first == "sd" { #expect(row[voxels] == "") }
        #expect(r.stderr.split(separator: "\n").count == 2)
    }

    // MARK: 7. Messages and consistency

    @Test func messagesAndExitStatusesAreConsistent() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-messages")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = Self.tinyModel.path
        let input = try Self.mr(in: dir, name: "mr.nii.gz")
        let out = dir.appendingPathComponent("o")
        // Empty stdin list: exit 1, like an empty folder.
        let empty = try TestSupport.runMR2CT(["convert", "--model", model, "-", "-o", out.path], stdin: "")
        #expect(empty.status == 1 && empty.stderr.contains("no input volume"))
        // --quiet: nothing on stderr when all goes well; the NDJSON still on stdout.
        let quiet = try TestSupport.runMR2CT(["convert", "--model", model, input.path, "-o", out.path, "--quiet"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
        #expect(try Self.lines(quiet.stdout).count == 1)
        // NDJSON errors carry "<file>: ", as on stderr.
        let again = try TestSupport.runMR2CT(["convert", "--model", model, input.path, "-o", out.path, "--quiet"])
        let error = try #require(try Self.lines(again.stdout).first?["error"] as? String)
        #expect(error.hasPrefix(input.path + ": ") && again.stderr == "mr2ct: \(error)\n", "\(error) / \(again.stderr)")
        // No command, or help for one that does not exist: usage errors.
        let none = try TestSupport.runMR2CT([])
        #expect(none.status == 64 && none.stderr.contains("SUBCOMMANDS"))
        let nosuch = try TestSupport.runMR2CT(["help", "nosuch"])
        #expect(nosuch.status == 64 && nosuch.stderr.contains("no command \"nosuch\""))
        #expect(try TestSupport.runMR2CT(["help", "convert"]).status == 0)
        // --resume on a missing run: one line, no usage text.
        let resume = try TestSupport.runMR2CT(["train", "--run", dir.appendingPathComponent("norun").path, "--resume"])
        #expect(resume.status == 1 && !resume.stderr.contains("USAGE") && resume.stderr.split(separator: "\n").count == 1, "\(resume.stderr)")
        #expect(resume.stderr.contains("no training run to resume"))
        // An output folder that cannot be made is found before the model is even read.
        let blocker = dir.appendingPathComponent("file")
        try Data("x".utf8).write(to: blocker)
        let unwritable = try TestSupport.runMR2CT(["convert", "--model", dir.appendingPathComponent("absent.safetensors").path,
                                                   input.path, "-o", blocker.appendingPathComponent("sub").path])
        #expect(unwritable.status == 1 && unwritable.stderr.contains("cannot create the output folder"), "\(unwritable.stderr)")
        // An .img path is its .hdr pair; a 4-D input converts with --volume.
        try NIfTIFile.write(try NIfTIFile.read(input), to: dir.appendingPathComponent("pair.hdr"))
        let img = try TestSupport.runMR2CT(["convert", "--model", model, dir.appendingPathComponent("pair.img").path, "-o", out.path, "--quiet"])
        #expect(img.status == 0, "\(img.stderr)")
        let c = try #require(MalformedNIfTI.allCases.first { $0.name == "four_d_without_index" })
        let fourD = try MalformedNIfTI.materialize(c, in: dir)
        let refused = try TestSupport.runMR2CT(["convert", "--model", model, fourD.path, "-o", out.path, "--quiet"])
        #expect(refused.status == 1 && refused.stderr.contains("--volume N"))
        let chosen = try TestSupport.runMR2CT(["convert", "--model", model, fourD.path, "-o", out.path, "--quiet", "--volume", "2"])
        #expect(chosen.status == 0, "\(chosen.stdout)")
        #expect(try NIfTIFile.read(out.appendingPathComponent("four_d_without_index_sct.nii.gz")).grid == GridSize(2, 2, 2))
        // --max-voxels applies the limit before reading.
        let limited = try TestSupport.runMR2CT(["convert", "--model", model, input.path, "-o", out.path, "--overwrite", "--max-voxels", "100"])
        #expect(limited.status == 1 && limited.stdout.contains("exceeds the limit of 100"))
    }

    /// Help prose is rewrapped by argument-parser: at 80 columns no line is longer, and the prose of a paragraph
    /// fills its lines (a hard break in the source would leave short lines inside a paragraph).
    @Test(arguments: ["info", "convert", "train", "mask", "evaluate", "reformat", "bench", "phantom"])
    func helpProseReadsWellAtEightyColumns(_ command: String) throws {
        let r = try TestSupport.runMR2CT(["help", command], environment: ["COLUMNS": "80", "PATH": "/usr/bin:/bin"])
        #expect(r.status == 0)
        let text = r.stdout
        #expect(!text.contains("(default 64). (default: 64)") && !text.contains("[default:"))
        let prose = text.components(separatedBy: "USAGE:")[0]
        for paragraph in prose.components(separatedBy: "\n\n") {
            let lines = paragraph.split(separator: "\n", omittingEmptySubsequences: false)
            guard lines.count > 1, !(lines.first?.hasPrefix("  ") ?? true) else { continue }
            for line in lines.dropLast() {
                #expect(line.count <= 80 && line.count >= 55, "\(command): short or long line in prose: \"\(line)\"")
            }
        }
    }

    // MARK: 5. Memory

    /// `mr2ct bench --memory` prints bytes per voxel from the peak resident memory; bound (README): ≤ 12 bytes per
    /// voxel (3 × float32) plus the process's baseline and the model's working set (80 MB for this tiny model).
    /// A 320³ int16 volume with an elliptic body filling 42 % of it, so that the body mask, the preparation, the
    /// generator over every slice, the QA and the int16 write all run (a volume of zeros would skip prediction).
    /// The previous conversion path (a full prepared copy, a volume per prediction) needed 19 bytes per voxel.
    @Test func peakMemoryOfInfoAndConvertIsBounded() throws {
        let dir = try TestSupport.makeTemporaryDirectory("hard-memory")
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 320
        let grid = GridSize(n, n, n)
        var voxels = [Float](repeating: 0, count: grid.count)
        let c = Float(n - 1) / 2
        for k in 0..<n { for j in 0..<n { for i in 0..<n {
            let x = (Float(i) - c) / (0.45 * Float(n)), y = (Float(j) - c) / (0.35 * Float(n))
            voxels[grid.index(i, j, k)] = x * x + y * y < 1 ? Float(400 + (i * 7 + j * 13 + k * 3) % 50) : Float((i + j + k) % 5)
        } } }
        var volume = Volume(grid: grid, voxels: voxels, affine: .scaling(SIMD3(1, 1, 1)))
        voxels = []
        volume.header.datatype = .int16
        let url = dir.appendingPathComponent("body.nii.gz")
        try NIfTIFile.write(volume, to: url, as: .int16)
        volume = Volume(grid: GridSize(1, 1, 1), voxels: [0], affine: .scaling(SIMD3(1, 1, 1)))
        let r = try TestSupport.runMR2CT(["bench", "--memory", url.path, "--model", Self.tinyModel.path])
        #expect(r.status == 0, "\(r.stderr)")
        let line = try #require(try Self.lines(r.stdout).first)
        print("memory benchmark, \(n)³ int16 with a body: \(r.stdout)", terminator: "")
        let count = Double(grid.count)
        let baseline = try #require(line["baseline_mb"] as? Double) * 1_048_576
        let info = try #require(line["info_peak_rss_mb"] as? Double), convert = try #require(line["convert_peak_rss_mb"] as? Double)
        #expect(line["voxels"] as? Int == grid.count)
        #expect(info * 1_048_576 <= 12 * count + baseline + 80 * 1_048_576)
        #expect(convert * 1_048_576 <= 12 * count + baseline + 80 * 1_048_576)
    }
}

struct Outcome { var status: Int32; var stdout: String; var stderr: String }

final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

