import Foundation

/// Standard error as a `TextOutputStream`: `print("…", to: &standardError)` for progress and diagnostics, so that
/// standard output stays machine-readable.
public struct StandardErrorStream: TextOutputStream, Sendable {
    public init() {}
    public mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}

/// True when file descriptor `fd` is a terminal (progress bars then redraw in place; otherwise plain lines).
public func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }
