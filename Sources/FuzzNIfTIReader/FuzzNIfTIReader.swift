import Foundation
import NIfTI

/// libFuzzer target for the NIfTI reader (issue 9). The first input byte picks the container; the rest is the file:
/// 0 → .nii, 1 → .nii.gz (bytes as given, so the fuzzer must find gzip itself), 2 → .hdr/.img (the first 348 or 540
/// bytes are the header, the rest the image), 3 → .hdr.gz/.img.gz likewise. Every input must be read or refused
/// with an NIfTIError; anything else (a crash, a sanitizer report, a leak, a hang) is a bug.
///
/// Fuzzing build (see /work/notes/nifti.md):
///   swift build -c debug --product FuzzNIfTIReader -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING
/// Normal build: a replayer, `FuzzNIfTIReader FILE...` runs saved inputs through the same harness.
enum Harness {
    static let folder: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = (base as NSString).appendingPathComponent("mr2ct-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// Runs one input; returns the error reason, or nil when the file was read.
    @discardableResult
    static func run(_ input: UnsafeRawBufferPointer) -> String? {
        guard let selector = input.first else { return "empty input" }
        let body = Array(input.dropFirst())
        let names: [(String, ArraySlice<UInt8>)]
        switch selector % 4 {
        case 0: names = [("f.nii", body[...])]
        case 1: names = [("f.nii.gz", body[...])]
        default:
            let split = body.count >= 4 && (body[0] == 0x1C || body[3] == 0x1C) ? 540 : 348
            let cut = min(split, body.count)
            let gz = selector % 4 == 3 ? ".gz" : ""
            names = [("f.hdr" + gz, body[..<cut]), ("f.img" + gz, body[cut...])]
        }
        for (name, bytes) in names {
            _ = FileManager.default.createFile(atPath: folder + "/" + name, contents: Data(bytes))
        }
        defer { for (name, _) in names { unlink(folder + "/" + name) } }
        let url = URL(fileURLWithPath: folder + "/" + names[0].0)
        // Three independent reads: header only, as a 3-D volume, and as volume 1 of a 4-D file with NaN/Inf
        // replaced; "read" if any succeeds, else the first reason.
        var reasons: [String] = []
        let reads: [() throws -> Void] = [
            { _ = try NIfTIFile.readHeader(url) },
            { _ = try NIfTIFile.read(url, options: NIfTIReadOptions(maxVoxels: 1 << 22)) },
            { _ = try NIfTIFile.read(url, options: NIfTIReadOptions(volumeIndex: 1, maxVoxels: 1 << 22, nonFinite: .replaceWithZero)) },
        ]
        var anyRead = false
        for read in reads {
            do {
                try read()
                anyRead = true
            } catch let error as NIfTIError {
                precondition(!error.description.contains("\n"), "multi-line error")
                precondition(error.path == url.path, "error names another file")
                reasons.append(error.reason)
            } catch {
                preconditionFailure("unexpected error type \(error)")
            }
        }
        return anyRead ? nil : reasons.first
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Harness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// SwiftPM links executables with `--defsym main=<Target>_main`; under -parse-as-library that symbol would be
/// missing. Defining it here (and driving libFuzzer through LLVMFuzzerRunDriver) keeps libFuzzer's own `main`
/// out of the link.
@_cdecl("FuzzNIfTIReader_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
}
#else
@main
struct FuzzNIfTIReader {
    static func main() {
        var failures = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("\(path): cannot read"); failures += 1; continue
            }
            let reason = data.withUnsafeBytes { Harness.run($0) }
            print("\(path): \(reason ?? "read")")
        }
        exit(failures == 0 ? 0 : 1)
    }
}
#endif
