import Dispatch
import Foundation

/// SIGINT / SIGTERM during training: the first signal asks the loop to stop after the current iteration (it then
/// saves a checkpoint and exits with 128 + the signal number); a second one exits at once, leaving the last
/// checkpoint as it was (every checkpoint on disk is complete at every moment).
public final class TrainingStopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var signalNumber: Int32?
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    /// The signal that asked for a stop, if any.
    public var requestedBy: Int32? {
        lock.lock(); defer { lock.unlock() }
        return signalNumber
    }

    /// Asks the loop to stop (used by the signal handlers, and by tests).
    public func request(_ signal: Int32) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if signalNumber != nil { return false }
        signalNumber = signal
        return true
    }

    /// Installs handlers for SIGINT and SIGTERM that call `request`.
    public func installSignalHandlers() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                if !self.request(number) {
                    FileHandle.standardError.write(Data("mr2ct: second \(Self.name(number)): stopping now without saving\n".utf8))
                    _exit(128 + number)
                }
                FileHandle.standardError.write(Data("\nmr2ct: \(Self.name(number)): finishing this iteration, then saving a checkpoint\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }

    static func name(_ number: Int32) -> String {
        switch number {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(number)"
        }
    }
}
