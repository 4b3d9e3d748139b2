import Foundation

/// The one `main` of MR2CT's libFuzzer targets (SafetensorsFuzzer, FuzzDICOMReader; see Tests/Fuzz/README.md).
/// Built with `-DFUZZING` and `-sanitize=fuzzer`, it hands the command line to libFuzzer's driver
/// (`LLVMFuzzerRunDriver`, compiler-rt FuzzerDriver.cpp): SwiftPM gives executables their own entry point symbol,
/// so libFuzzer's `main` is never linked. Built normally it is a replay tool: each argument is a saved input, run
/// through `replay`, which prints its outcome and returns false when the input broke a promise (exit status 1).
public enum LibFuzzerDriver {
    public typealias TestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    public static func main(tool: String, fuzz: TestOneInput, replay: (_ path: String, _ bytes: Data) -> Bool) -> Never {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzz))
        #else
        var failures = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let bytes = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("\(tool): \(path): cannot read\n".utf8))
                failures += 1
                continue
            }
            if !replay(path, bytes) { failures += 1 }
        }
        exit(failures == 0 ? 0 : 1)
        #endif
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif
