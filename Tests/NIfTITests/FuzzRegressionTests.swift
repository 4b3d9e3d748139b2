import Foundation
import Testing
import TestSupport

/// Inputs the NIfTI-reader fuzzer (Sources/FuzzNIfTIReader) found crashing, kept as regressions, plus its seed
/// corpus: each is replayed through the same harness by the normally built `FuzzNIfTIReader`, which must exit 0.
@Suite struct FuzzRegressionTests {
    static let regressions = TestSupport.packageRoot.appendingPathComponent("Tests/Fuzz/nifti/crashes")
    static let seeds = TestSupport.packageRoot.appendingPathComponent("Tests/Fuzz/nifti/corpus")

    static func inputs(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted().map { folder.appendingPathComponent($0).path }
    }

    @Test func replayRegressionsAndSeeds() throws {
        let replayer = TestSupport.productsDirectory.appendingPathComponent("FuzzNIfTIReader")
        try #require(FileManager.default.isExecutableFile(atPath: replayer.path), "build FuzzNIfTIReader (swift build --build-tests builds it)")
        let files = Self.inputs(Self.regressions) + Self.inputs(Self.seeds)
        #expect(Self.inputs(Self.seeds).count >= 20)
        let result = try TestSupport.run(replayer, files)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").count == files.count)
        // The seeds are valid files: every one reads.
        for seed in Self.inputs(Self.seeds) { #expect(result.stdout.contains("\(seed): read\n"), "\(seed)") }
    }
}
