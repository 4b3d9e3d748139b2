import ArgumentParser
import Conversion
import CycleGAN
import SyntheticCT
import Foundation
import MR2CTSupport
import NIfTI
import Preprocessing

/// `mr2ct histogram`: stores the training-MR intensity histogram in a generator file that has none.
struct HistogramCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "histogram",
        abstract: "Store the training MR's intensity histogram in a generator file (for convert's input check).",
        discussion: """
            Computes the histogram of the normalised MR intensities inside the body of the given MR volumes with the model's own preprocessing (body mask, percentile or z-score map; 64 bins), exactly as mr2ct train stores it in every generator file it writes, and writes the model with that histogram in its metadata ("mr_histogram"). The weights are copied unchanged. Use it for models saved before training stored the histogram, giving the MR volumes the model was trained on. Prints one JSON line: {"model","output","volumes","voxels"}.
            """)

    @Option(name: .long, help: ArgumentHelp("The generator .safetensors file (or run folder) to read.", valueName: "FILE"))
    var model: String

    @Argument(help: ArgumentHelp("The training MR volumes, or folders of them.", valueName: "MR"))
    var inputs: [String]

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("The generator file to write.", valueName: "FILE"))
    var output: String

    @Flag(name: .long, help: "Replace OUTPUT if it exists (it may be the model file itself).")
    var overwrite = false

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("give at least one MR volume or folder") }
        guard output.lowercased().hasSuffix(".safetensors") else { throw ValidationError("--output must end in .safetensors") }
    }

    func run() throws {
        var standardError = StandardErrorStream()
        let outputURL = URL(fileURLWithPath: output).standardizedFileURL
        if FileManager.default.fileExists(atPath: outputURL.path) && !overwrite {
            print("mr2ct: \(outputURL.path): exists (use --overwrite)", to: &standardError)
            throw ExitCode.failure
        }
        let items = ConversionInputs.expand(inputs)
        if let bad = items.first(where: { $0.problem != nil }) {
            print("mr2ct: \(bad.path): \(bad.problem!)", to: &standardError)
            throw ExitCode.failure
        }
        do {
            let loaded = try SyntheticCTModel.load(URL(fileURLWithPath: model))
            let histogram = try ModelHistogram.histogram(of: items.map(\.url), preprocessing: loaded.preprocessing)
            try ModelHistogram.store(histogram, in: loaded.file, to: outputURL)
            print("{\"model\":\(JSONLiteral.string(loaded.file.path)),\"output\":\(JSONLiteral.string(outputURL.path)),"
                  + "\"volumes\":\(items.count),\"voxels\":\(Int(histogram.total))}")
        } catch {
            print("mr2ct: \(error)", to: &standardError)
            throw ExitCode.failure
        }
    }
}
