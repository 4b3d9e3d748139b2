import Foundation

/// A training failure: one line, `"<path>: <reason>"`, naming the file or folder concerned.
public struct TrainingError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

extension TrainingError {
    /// A Foundation error's text for a one-line message.
    static func reason(_ error: Error) -> String {
        if let error = error as? CocoaError { return error.localizedDescription }
        return String(describing: error)
    }
}
