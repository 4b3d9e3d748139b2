import ArgumentParser
import DICOM
import Foundation
import MR2CTSupport
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
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "help", arguments.count > 1 {
            let names = configuration.subcommands.compactMap { $0.configuration.commandName }
            if !names.contains(arguments[1]) {
                var standardError = StandardErrorStream()
                print("mr2ct: help: no command \"\(arguments[1])\" (commands: \(names.joined(separator: ", ")))",
                      to: &standardError)
                Foundation.exit(ExitCode.validationFailure.rawValue)
            }
        }
        main(nil)
    }

    /// `mr2ct` without a command: the overview on standard error and exit status 64 (a usage error), so that a
    /// script that lost its arguments does not carry on as if something had run.
    func run() throws {
        var standardError = StandardErrorStream()
        print(Self.helpMessage(), to: &standardError)
        throw ExitCode.validationFailure
    }
}

enum MR2CTVersion {
    static let string = "0.1.0"
    /// `mr2ct --version`: the tool and the libraries it reads and writes volumes with.
    static let full = "mr2ct \(string)\n\(NIfTIFile.libraryVersion)\n\(DICOMLibrary.version)"
}
