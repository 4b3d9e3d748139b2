import Foundation

/// Writes files so that a reader never sees a partial one: the bytes go to a temporary file in the target's
/// folder, are flushed, and the temporary file is renamed over the target (rename(2) is atomic within a file
/// system). A failed write removes the temporary file and leaves any existing target untouched.
public enum AtomicFile {
    /// An error while writing `path`, with the reason in words (one line).
    public struct WriteError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
        public init(path: String, reason: String) { self.path = path; self.reason = reason }
    }

    /// A temporary path beside `url`, hidden and unique to this process, e.g. `.out.nii.gz.tmp-1234-5`.
    /// Its name keeps the target's extensions so that libraries which pick a format by name still do so.
    public static func temporaryURL(for url: URL) -> URL {
        let name = url.lastPathComponent
        let unique = "\(getpid())-\(UInt32.random(in: 0 ... .max))"
        return url.deletingLastPathComponent().appendingPathComponent(".tmp-\(unique)-\(name)")
    }

    /// Runs `produce` with a temporary path beside `url`, then flushes and renames the result over `url`.
    /// If `produce` throws, or the file cannot be completed, the temporary file is removed and the error rethrown.
    public static func write(to url: URL, _ produce: (URL) throws -> Void) throws {
        let temporary = temporaryURL(for: url)
        do {
            try produce(temporary)
            try syncFile(temporary)
            guard rename(temporary.path, url.path) == 0 else {
                throw WriteError(path: url.path, reason: String(cString: strerror(errno)))
            }
        } catch {
            unlink(temporary.path)
            throw error
        }
    }

    /// Atomically replaces `url` with `data`.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { temporary in
            let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            guard fd >= 0 else { throw WriteError(path: url.path, reason: String(cString: strerror(errno))) }
            defer { close(fd) }
            try data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw WriteError(path: url.path, reason: String(cString: strerror(errno)))
                    }
                    offset += n
                }
            }
        }
    }

    /// fsync(2) on a finished file, so that a crash after the rename cannot leave an empty target.
    private static func syncFile(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw WriteError(path: url.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw WriteError(path: url.path, reason: String(cString: strerror(errno))) }
    }
}
