import Dispatch
import Foundation

/// SIGINT / SIGTERM during training: the first asks the loop to stop after the current iteration (it saves a
/// checkpoint; the tool exits with 128 + the signal number); a second exits at once (every set on disk is complete).
/// Every training command uses this one (CycleGAN's former `TrainingStopRequest`).
public final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var signalNumber: Int32?
    private var sources: [DispatchSourceSignal] = []
    private var announcing = true

    public init() {}

    /// Whether this process says on stderr that it got a signal (a data-parallel job's other ranks stop silently,
    /// so the job's output has the message once, from rank 0).
    public var announces: Bool {
        get { lock.lock(); defer { lock.unlock() }; return announcing }
        set { lock.lock(); defer { lock.unlock() }; announcing = newValue }
    }

    public var requestedBy: Int32? {
        lock.lock(); defer { lock.unlock() }
        return signalNumber
    }

    /// Asks for a stop; false when one was asked already.
    @discardableResult
    public func request(_ signal: Int32) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if signalNumber != nil { return false }
        signalNumber = signal
        return true
    }

    public func installSignalHandlers() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                let name = number == SIGINT ? "SIGINT" : "SIGTERM"
                let announces = self.announces
                if !self.request(number) {
                    if announces { FileHandle.standardError.write(Data("mr2ct: second \(name): stopping now without saving\n".utf8)) }
                    _exit(128 + number)
                }
                if announces {
                    FileHandle.standardError.write(Data("\nmr2ct: \(name): finishing this iteration, then saving a checkpoint\n".utf8))
                }
            }
            source.resume()
            sources.append(source)
        }
    }
}
