// libFuzzer target for the DICOM reader (issue 19). Built two ways:
//   fuzzing:  swift build -c release --product FuzzDICOMReader --scratch-path .build-fuzz \
//                 -Xswiftc -sanitize=fuzzer,address -Xcxx -fsanitize=fuzzer-no-link,address -Xswiftc -DFUZZING
//             .build-fuzz/release/FuzzDICOMReader /tmp/dicom-corpus Tests/Fuzz/dicom/corpus \
//                 -dict=Tests/Fuzz/dicom/dicom.dict -max_len=8192 -timeout=10 -max_total_time=1800
//   normally: a replay tool, `FuzzDICOMReader FILE...`, that runs the same harness on each file and prints its
//             outcome (exit 1 when any input broke the reader's promises).
// Each input is up to three files of one folder (DICOMFuzzInput), read as every command reads a folder
// (DICOMFuzzHarness: VolumeSource → DICOMFolder → the CDCMTK bridge → DCMTK). See Tests/Fuzz/README.md.
import DICOMFuzzing
import Foundation
import FuzzingSupport

/// A folder of this process's own in /dev/shm (no disk I/O per input), reused for every input.
let folder: URL = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return URL(fileURLWithPath: base).appendingPathComponent("mr2ct-dicomfuzz-\(getpid())")
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let outcome = DICOMFuzzHarness.run(UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size), in: folder)
    // A broken promise is a crash for libFuzzer, so that it saves the input (the reason first: release builds drop
    // precondition messages).
    if !outcome.violations.isEmpty {
        FileHandle.standardError.write(Data("FuzzDICOMReader: \(outcome)\n".utf8))
        abort()
    }
    return 0
}

@main
struct FuzzDICOMReaderMain {
    static func main() {
        atexit { try? FileManager.default.removeItem(at: folder) }
        LibFuzzerDriver.main(tool: "FuzzDICOMReader", fuzz: { data, size in LLVMFuzzerTestOneInput(data, size) }) { path, bytes in
            let outcome = bytes.withUnsafeBytes { DICOMFuzzHarness.run($0, in: folder) }
            print("\(path): \(outcome)")
            return outcome.violations.isEmpty
        }
    }
}
