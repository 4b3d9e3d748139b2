import ArgumentParser
import Foundation
import NIfTI

/// `mr2ct`: the command-line tool. Each subcommand parses its options and calls a library; no logic lives here.
@main
struct MR2CTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mr2ct",
        abstract: "Synthetic CT from MR volumes for MR-only radiotherapy planning (unpaired CycleGAN).",
        version: MR2CTVersion.full,
        subcommands: [InfoCommand.self, ReformatCommand.self, BenchCommand.self, PhantomCommand.self, MaskCommand.self,
                      ConvertCommand.self, EvaluateCommand.self, TrainCommand.self, HistogramCommand.self,
                      GANCommand.self]
    )

    /// SIGXFSZ ignored: under a file-size limit (`ulimit -f`) write(2) then fails with EFBIG, which the writers
    /// report as an error (and clean up after), instead of the process being killed mid-file.
    static func main() {
        signal(SIGXFSZ, SIG_IGN)
        main(nil)
    }
}

enum MR2CTVersion {
    static let string = "0.1.0"
    /// `mr2ct --version`: the tool and the libraries it reads and writes volumes with.
    static let full = "mr2ct \(string)\n\(NIfTIFile.libraryVersion)"
}
