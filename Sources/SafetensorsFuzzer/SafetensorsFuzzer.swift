// libFuzzer target for the safetensors reader (issue 9). Built two ways:
//   fuzzing:  swift build -c release --product SafetensorsFuzzer --scratch-path .build-fuzz \
//                 -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
//             .build-fuzz/release/SafetensorsFuzzer Tests/Fuzz/safetensors/corpus -max_total_time=600
//   normally: a replay tool, `SafetensorsFuzzer FILE...`, that runs the same entry point on each file
//             (what the regression tests do with Tests/Fuzz/safetensors/crashes).
import Foundation
import FuzzingSupport
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

@main
struct SafetensorsFuzzerMain {
    static func main() {
        LibFuzzerDriver.main(tool: "SafetensorsFuzzer", fuzz: { data, size in LLVMFuzzerTestOneInput(data, size) }) { path, bytes in
            fuzzOne(bytes)
            print("ok \(path)")
            return true
        }
    }
}
