import Foundation

/// A failure of a training run, one line `"<path>: <reason>"` naming the file or folder concerned.
public enum RunError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The run folder path names a file.
    case notAFolder(path: String)
    /// A folder or file cannot be created or written.
    case io(path: String, reason: String)
    /// Another process trains in this run folder.
    case locked(path: String)
    /// `--resume` on a folder that holds no run.
    case noRun(path: String)
    /// The folder's run was made with other settings.
    case configurationMismatch(path: String, differences: [String])
    /// A checkpoint file is missing, damaged or does not fit the model.
    case checkpoint(path: String, reason: String)
    /// A loss became NaN or infinite; the last good checkpoint is kept.
    case nonFiniteLoss(path: String, loss: String, value: Float, iteration: Int, kept: String?)
    /// The data cannot give a batch.
    case data(path: String, reason: String)

    public var path: String {
        switch self {
        case .notAFolder(let p), .io(let p, _), .locked(let p), .noRun(let p), .configurationMismatch(let p, _),
             .checkpoint(let p, _), .nonFiniteLoss(let p, _, _, _, _), .data(let p, _): p
        }
    }

    public var reason: String {
        switch self {
        case .notAFolder: "the run folder path is a file, not a folder"
        case .io(_, let reason), .checkpoint(_, let reason), .data(_, let reason): reason
        case .locked: "the run folder is in use by another mr2ct process"
        case .noRun: "no training run to resume here (no config.json)"
        case .configurationMismatch(_, let differences):
            "the run folder was made with another configuration (" + differences.prefix(4).joined(separator: "; ")
                + (differences.count > 4 ? "; …" : "") + "); use another --run folder, or the run's own settings"
        case .nonFiniteLoss(_, let loss, let value, let iteration, let kept):
            "loss \(loss) is \(value) at iteration \(iteration): training stopped; "
                + (kept.map { "the last good checkpoint checkpoints/\($0) is kept" } ?? "no checkpoint was saved yet")
                + " (a lower --lr may help; start a new --run)"
        }
    }

    public var description: String { "\(path): \(reason)" }
}
