import ArgumentParser
import Conversion
import Evaluation
import Foundation
import MR2CTSupport

/// `mr2ct evaluate`: SynthRAD image metrics of synthetic CTs against reference CTs.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score synthetic CTs against reference CTs: MAE, ME, PSNR, SSIM inside the body (SynthRAD 2023).",
        discussion: """
        --pred and --ref are files or folders; in folders a prediction x_sct.nii.gz goes with the reference \
        x.nii.gz (and a mask x_mask.nii.gz or x.nii.gz in a --mask folder), and a reference without a prediction \
        is an error for that volume. Without --mask the body mask of the reference CT is used. MAE and ME in HU \
        are unclipped (ME = mean of sCT − CT); PSNR and SSIM use both images clipped to [-1024, 3000] HU, data \
        range 4024. Standard output: one JSON line per volume ("kind":"volume") and a last one with mean and \
        sample sd ("kind":"summary"). With --labels (a label map per reference, matched like masks) each line also \
        carries "labels": MAE and ME per tissue label inside the mask, pooled over all volumes in the summary with \
        each label's share of the voxels and its contribution to the MAE; names come from --label-names or a \
        dseg.tsv in the --labels folder (BIDS: tab-separated, columns index and name). Exit status 1 when any \
        volume could not be scored.
        """
    )

    @Option(name: .long, help: ArgumentHelp("Synthetic CT file or folder (NIfTI files; DICOM series: a series folder, FOLDER#SERIES, or a folder of series).", valueName: "SCT"))
    var pred: String

    @Option(name: .long, help: ArgumentHelp("Reference CT file or folder (NIfTI files; DICOM series: a series folder, FOLDER#SERIES, or a folder of series).", valueName: "CT"))
    var ref: String

    @Option(name: .long, help: ArgumentHelp("Mask file or folder (voxels > 0 are scored). (default: the reference's body mask)",
                                            valueName: "MASK"))
    var mask: String?

    @Option(name: .long, help: ArgumentHelp("Tissue label map file or folder (whole numbers) for per-label MAE and ME.",
                                            valueName: "LABELS"))
    var labels: String?

    @Option(name: .long, help: ArgumentHelp("Label names: a BIDS dseg.tsv (columns index and name). (default: LABELS/dseg.tsv if present)",
                                            valueName: "TSV"))
    var labelNames: String?

    @Option(name: .long, help: ArgumentHelp("Also write the table as CSV (a row per volume, then mean and sd rows).", valueName: "FILE"))
    var csv: String?

    @Option(name: .long, help: ArgumentHelp("SSIM window: synthrad (uniform 7³, SynthRAD 2023) or gaussian (σ 1.5, Wang 2004).",
                                            valueName: "synthrad|gaussian"))
    var ssimWindow: String = "synthrad"

    func validate() throws {
        guard ["synthrad", "gaussian"].contains(ssimWindow) else {
            throw ValidationError("--ssim-window must be synthrad or gaussian")
        }
        if labelNames != nil && labels == nil { throw ValidationError("--label-names needs --labels") }
    }

    /// The label names: --label-names, else a dseg.tsv in the --labels folder, else none.
    func readLabelNames() throws -> [Int: String] {
        if let labelNames { return try LabelTable.read(URL(fileURLWithPath: labelNames)) }
        guard let labels else { return [:] }
        let table = URL(fileURLWithPath: labels).appendingPathComponent("dseg.tsv")
        return FileManager.default.fileExists(atPath: table.path) ? try LabelTable.read(table) : [:]
    }

    func run() throws {
        var standardError = StandardErrorStream()
        let pairs: [EvaluationPair]
        let names: [Int: String]
        do {
            pairs = try EvaluationMatching.pairs(prediction: pred, reference: ref, mask: mask, labels: labels)
            names = try readLabelNames()
        } catch {
            print("mr2ct: \(error)", to: &standardError)
            throw ExitCode.failure
        }
        let window: SSIMWindow = ssimWindow == "gaussian" ? .gaussian(sigma: 1.5) : .synthRAD
        var records: [EvaluationRecord] = []
        for pair in pairs {
            let record = EvaluationRunner.evaluate(pair, ssimWindow: window, labelNames: names)
            if let error = record.error { print("mr2ct: \(error)", to: &standardError) }
            FileHandle.standardOutput.write(Data((record.jsonLine + "\n").utf8))
            records.append(record)
        }
        let summary = EvaluationSummary(records)
        FileHandle.standardOutput.write(Data((summary.jsonLine + "\n").utf8))
        if let csv {
            do {
                try AtomicFile.write(Data(EvaluationRunner.csv(records, summary: summary).utf8), to: URL(fileURLWithPath: csv))
            } catch {
                print("mr2ct: \(error)", to: &standardError)
                throw ExitCode.failure
            }
        }
        if summary.failed > 0 { throw ExitCode.failure }
    }
}
