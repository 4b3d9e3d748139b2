import ArgumentParser
import Foundation
import MR2CTSupport
import Phantom
import Reporting

/// `mr2ct phantom`: paired synthetic head phantoms (T1-weighted MR and CT of the same anatomy).
struct PhantomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phantom",
        abstract: "Generate paired synthetic head phantoms: T1-weighted MR and CT (HU) of the same anatomy.",
        discussion: """
        Writes OUT/mr/sub-NNN.nii.gz and OUT/ct/sub-NNN.nii.gz (INT16, same grid and affine), optionally \
        OUT/labels (tissue labels) and OUT/preview (PNG mid-slices). Subject NNN of a seed is always the same \
        anatomy, so disjoint --first ranges give disjoint subjects, e.g. an MR training set, a CT training set \
        from other subjects, and a held-out paired set:

          mr2ct phantom --out train --outputs mr --subjects 6 --first 1
          mr2ct phantom --out train --outputs ct --subjects 6 --first 7
          mr2ct phantom --out heldout --subjects 5 --first 101

        A sub-folder that already holds files is refused unless --overwrite is given. Prints one JSON line per \
        subject on stdout (files, grid, spacing, orientation); progress on stderr.
        """
    )

    @Option(name: .long, help: "Output folder (created if needed).")
    var out: String

    @Option(name: .long, help: "Number of subjects.")
    var subjects: Int = 5

    @Option(name: .long, help: "Random seed: the same seed, index and options give the same volumes.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Index of the first subject (subjects are sub-<first> … sub-<first+subjects-1>).")
    var first: Int = 1

    @Option(name: .long, help: "Grid size in voxels, NXxNYxNZ.")
    var size: String = PhantomConfiguration().gridSize.map(String.init).joined(separator: "x")

    @Option(name: .long, help: "Voxel spacing in mm, SXxSYxSZ.")
    var spacing: String = PhantomConfiguration().spacing.map { String(format: "%g", $0) }.joined(separator: "x")

    @Option(name: .long, help: "Comma-separated outputs among mr, ct, labels, preview.")
    var outputs: String = "mr,ct"

    @Option(name: .long, help: "MR Rician noise σ as a fraction of the white-matter signal.")
    var mrNoise: Double = PhantomConfiguration().mrNoise

    @Option(name: .long, help: "CT noise σ in HU.")
    var ctNoise: Double = PhantomConfiguration().ctNoise

    @Option(name: .long, help: "Largest displacement (mm) of each wave of the random deformation.")
    var deformation: Double = PhantomConfiguration().deformation

    @Option(name: .long, help: "Strength of the MR bias field (largest log-polynomial coefficient; 0 = none).")
    var biasField: Double = PhantomConfiguration().biasField

    @Flag(name: .long, help: "Replace the phantoms of an earlier run in OUT (its sub-*.nii.gz, sub-*.png and dseg.tsv files in the sub-folders written, and its labels and previews). Without it a sub-folder that already holds files is an error.")
    var overwrite = false

    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        guard subjects >= 1 && subjects <= 100_000 else { throw ValidationError("--subjects must be in 1…100000") }
        guard first >= 0 && first <= 1_000_000 else { throw ValidationError("--first must be in 0…1000000") }
        _ = try parsedOutputs()
        if let problem = try makeConfiguration().problem { throw ValidationError(problem) }
    }

    func run() throws {
        let generator = PhantomGenerator(configuration: try makeConfiguration(), seed: seed)
        let progress = ProgressReporter(label: "phantom", total: subjects, unit: "subject",
                                        style: quiet ? .silent : .automatic, interval: 10)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            try PhantomDataset.prepareFolder(URL(fileURLWithPath: out, isDirectory: true), outputs: try parsedOutputs(),
                                             overwrite: overwrite)
            _ = try PhantomDataset.write(generator, indices: Array(first..<(first + subjects)),
                                         to: URL(fileURLWithPath: out, isDirectory: true),
                                         outputs: try parsedOutputs(), progress: progress) { record in
                if let line = try? encoder.encode(record) {
                    FileHandle.standardOutput.write(line + Data("\n".utf8))
                }
            }
            progress.finish()
        } catch {
            progress.finish()
            var standardError = StandardErrorStream()
            print("mr2ct: \(error)", to: &standardError)
            throw ExitCode.failure
        }
    }

    private func makeConfiguration() throws -> PhantomConfiguration {
        var configuration = PhantomConfiguration()
        configuration.gridSize = try Self.triple(size, "--size").map { value in
            guard value == value.rounded(), value >= 1, value <= 100_000 else {
                throw ValidationError("--size expects whole numbers like 96x96x40, got \(size)")
            }
            return Int(value)
        }
        configuration.spacing = try Self.triple(spacing, "--spacing")
        configuration.mrNoise = mrNoise
        configuration.ctNoise = ctNoise
        configuration.deformation = deformation
        configuration.biasField = biasField
        return configuration
    }

    private func parsedOutputs() throws -> Set<PhantomOutput> {
        var set = Set<PhantomOutput>()
        for name in outputs.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            guard let output = PhantomOutput(rawValue: name) else {
                throw ValidationError("--outputs: unknown output \"\(name)\" (mr, ct, labels, preview)")
            }
            set.insert(output)
        }
        guard !set.isEmpty else { throw ValidationError("--outputs is empty") }
        return set
    }

    /// "96x96x40" → [96, 96, 40].
    private static func triple(_ text: String, _ option: String) throws -> [Double] {
        let pieces = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        let parts = pieces.compactMap { Double($0) }.filter(\.isFinite)
        guard pieces.count == 3, parts.count == 3 else {
            throw ValidationError("\(option) expects three numbers like 96x96x40, got \"\(text)\"")
        }
        return parts
    }
}
