// libFuzzer target for the safetensors reader (issue 9). Built two ways:
//   fuzzing:  swift build -c release --product SafetensorsFuzzer --scratch-path .build-fuzz \
//                 -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
//             .build-fuzz/release/SafetensorsFuzzer Tests/Fuzz/safetensors/corpus -max_total_time=600
//   normally: a replay tool, `SafetensorsFuzzer FILE...`, that runs the same entry point on each file
//             (what the regression tests do with Tests/Fuzz/safetensors/crashes).
import Foundation
import Safetensors

/// One fuzz input: parse it as a safetensors file and decode every floating-point tensor. Any outcome other
/// than a value or a thrown `SafetensorsError` (a trap, an overflow, an out-of-bounds read) is a bug.
func fuzzOne(_ bytes: Data) {
    guard let archive = try? SafetensorsFile.parse(bytes, path: "fuzz-input") else { return }
    for info in archive.tensors where info.dtype.isConvertibleToFloat {
        _ = try? archive.tensor(named: info.name)
    }
    _ = archive.metadata.count
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(size > 0 && data != nil ? Data(bytes: data!, count: size) : Data())
    return 0
}

#if FUZZING
/// libFuzzer's driver entry (compiler-rt FuzzerDriver.cpp). SwiftPM gives executables their own entry point
/// symbol, so libFuzzer's `main` is not used: ours hands the command line to the driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif

@main
struct SafetensorsFuzzerMain {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in LLVMFuzzerTestOneInput(data, size) })
        #else
        var failures = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let bytes = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("SafetensorsFuzzer: \(path): cannot read\n".utf8))
                failures += 1
                continue
            }
            fuzzOne(bytes)
            print("ok \(path)")
        }
        exit(failures == 0 ? 0 : 1)
        #endif
    }
}
