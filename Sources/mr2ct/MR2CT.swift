import ArgumentParser

/// `mr2ct`: the command-line tool. Each subcommand parses its options and calls a library; no logic lives here.
@main
struct MR2CTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mr2ct",
        abstract: "Synthetic CT from MR volumes for MR-only radiotherapy planning (unpaired CycleGAN).",
        version: MR2CTVersion.string,
        subcommands: [ConvertCommand.self, EvaluateCommand.self]
    )
}

enum MR2CTVersion {
    static let string = "0.1.0"
}
