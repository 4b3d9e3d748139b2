import Foundation
import Testing
import TestSupport
@testable import Safetensors

/// Replays the fuzzing seed corpus and every input that ever crashed the reader (Tests/Fuzz/safetensors, see
/// Tests/Fuzz/README.md): each is parsed and decoded, or refused with a SafetensorsError; none may trap.
@Suite struct SafetensorsFuzzRegressionTests {
    static var folders: [URL] {
        let root = TestSupport.packageRoot.appendingPathComponent("Tests/Fuzz/safetensors")
        return [root.appendingPathComponent("corpus"), root.appendingPathComponent("crashes")]
    }

    @Test func seedsAndCrashersParseOrFailCleanly() throws {
        var count = 0
        for folder in Self.folders {
            let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []
            for file in files where !file.lastPathComponent.hasPrefix(".") {
                let bytes = try Data(contentsOf: file)
                do {
                    let archive = try SafetensorsFile.parse(bytes, path: file.path)
                    for info in archive.tensors where info.dtype.isConvertibleToFloat {
                        _ = try archive.tensor(named: info.name)
                    }
                } catch let error as SafetensorsError {
                    #expect(!error.description.contains("\n"))
                }
                count += 1
            }
        }
        #expect(count >= 8, "the seed corpus is there")
    }
}
