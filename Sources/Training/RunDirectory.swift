import Foundation
import MR2CTSupport

/// A training run's folder, for any model family:
///
///     <run>/config.json             the run's configuration (written once, compared on every resume)
///     <run>/log.ndjson              one JSON line per iteration, validation pass and checkpoint (`RunLog`)
///     <run>/report.html             the offline report (curves, latest grid, configuration)
///     <run>/samples/iter_0000500.png
///     <run>/checkpoints/iter_0000500/   complete, immutable checkpoint sets (the model's components + state.json)
///     <run>/checkpoints/latest -> iter_0000500   (symlink, replaced atomically)
///     <run>/checkpoints/best   -> iter_0000400   (symlink; best validation score)
///
/// A CycleGAN run also keeps `<run>/cache/` (the slice loader's prepared slices, safe to delete).
///
/// Crash safety (CycleGAN's former `RunFolder`, made model-agnostic): a set is written into a hidden `.tmp-*` folder, every file and the folder fsynced, then renamed into
/// place; links are replaced by renaming a new symlink over the old; old sets are renamed to `.trash-*` before
/// deletion and never while a link names them; hidden leftovers are removed on open; a lock file keeps two
/// processes out of one folder.
public final class RunDirectory {
    public let url: URL
    private var lockDescriptor: Int32 = -1

    public var configurationURL: URL { url.appendingPathComponent("config.json") }
    public var logURL: URL { url.appendingPathComponent("log.ndjson") }
    public var reportURL: URL { url.appendingPathComponent("report.html") }
    public var samplesDirectory: URL { url.appendingPathComponent("samples", isDirectory: true) }
    public var checkpointsDirectory: URL { url.appendingPathComponent("checkpoints", isDirectory: true) }

    /// The links a run keeps.
    public enum Link: String, Sendable { case latest, best }

    /// `iter_0000500` for 500 iterations.
    public static func setName(iteration: Int) -> String {
        "iter_" + String(repeating: "0", count: max(0, 7 - String(iteration).count)) + String(iteration)
    }

    public static func iteration(ofSetName name: String) -> Int? {
        guard name.hasPrefix("iter_"), let value = Int(name.dropFirst(5)), value >= 0 else { return nil }
        return value
    }

    /// Opens (creating if needed) the folder and takes its lock.
    public init(url: URL) throws {
        self.url = url.standardizedFileURL
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: self.url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw RunError.notAFolder(path: self.url.path)
        }
        do {
            try manager.createDirectory(at: checkpointsDirectory, withIntermediateDirectories: true)
            try manager.createDirectory(at: samplesDirectory, withIntermediateDirectories: true)
        } catch {
            throw RunError.io(path: self.url.path, reason: "cannot create the run folder (\(Self.reason(error)))")
        }
        let lockPath = self.url.appendingPathComponent(".lock").path
        lockDescriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockDescriptor >= 0 else {
            throw RunError.io(path: lockPath, reason: "cannot open the lock file (\(String(cString: strerror(errno))))")
        }
        if flock(lockDescriptor, LOCK_EX | LOCK_NB) != 0 {
            close(lockDescriptor)
            lockDescriptor = -1
            throw RunError.locked(path: self.url.path)
        }
        removeLeftovers()
    }

    /// Opens an existing run folder for reading only, as the other ranks of a data-parallel job do (rank 0 holds
    /// the lock and writes): no folder is made, no lock taken, nothing removed.
    public init(readingAt url: URL) throws {
        self.url = url.standardizedFileURL
        guard FileManager.default.fileExists(atPath: configurationURL.path) else { throw RunError.noRun(path: self.url.path) }
    }

    deinit {
        if lockDescriptor >= 0 { flock(lockDescriptor, LOCK_UN); close(lockDescriptor) }
    }

    public var hasConfiguration: Bool { FileManager.default.fileExists(atPath: configurationURL.path) }

    /// The complete sets on disk, oldest first.
    public func checkpointSets() -> [(name: String, iteration: Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsDirectory.path)) ?? []
        return names.compactMap { name in Self.iteration(ofSetName: name).map { (name, $0) } }.sorted { $0.1 < $1.1 }
    }

    public func setURL(_ name: String) -> URL { checkpointsDirectory.appendingPathComponent(name, isDirectory: true) }

    /// The set a link names, nil when absent or dangling.
    public func linkTarget(_ link: Link) -> String? {
        let path = checkpointsDirectory.appendingPathComponent(link.rawValue).path
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path),
              Self.iteration(ofSetName: target) != nil,
              FileManager.default.fileExists(atPath: setURL(target).path) else { return nil }
        return target
    }

    /// Writes a complete set for `iteration` (atomic); returns its name.
    @discardableResult
    public func writeSet(iteration: Int, _ produce: (URL) throws -> Void) throws -> String {
        let name = Self.setName(iteration: iteration)
        let manager = FileManager.default
        let temporary = checkpointsDirectory.appendingPathComponent(".tmp-\(name)-\(getpid())", isDirectory: true)
        try? manager.removeItem(at: temporary)
        do {
            try manager.createDirectory(at: temporary, withIntermediateDirectories: false)
            try produce(temporary)
            for file in try manager.contentsOfDirectory(atPath: temporary.path) {
                try Self.fsync(path: temporary.appendingPathComponent(file).path)
            }
            try Self.fsync(path: temporary.path)
            if manager.fileExists(atPath: setURL(name).path) { try discard(name) }
            guard rename(temporary.path, setURL(name).path) == 0 else {
                throw RunError.io(path: setURL(name).path, reason: "cannot move the checkpoint into place (\(String(cString: strerror(errno))))")
            }
            try Self.fsync(path: checkpointsDirectory.path)
        } catch {
            try? manager.removeItem(at: temporary)
            let reason = (error as? RunError)?.reason ?? Self.reason(error)
            throw RunError.io(path: setURL(name).path,
                              reason: "cannot write the checkpoint (\(reason.replacingOccurrences(of: temporary.path + "/", with: "")))")
        }
        return name
    }

    /// Points `link` at set `name`, atomically.
    public func setLink(_ link: Link, to name: String) throws {
        let temporary = checkpointsDirectory.appendingPathComponent(".link-\(link.rawValue)-\(getpid())").path
        let final = checkpointsDirectory.appendingPathComponent(link.rawValue).path
        unlink(temporary)
        guard symlink(name, temporary) == 0, rename(temporary, final) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw RunError.io(path: final, reason: "cannot update the link (\(reason))")
        }
        try Self.fsync(path: checkpointsDirectory.path)
    }

    /// Deletes the oldest sets beyond `keep` (0 keeps all), never a link's target.
    public func rotate(keep: Int) throws {
        guard keep > 0 else { return }
        let protected = Set([linkTarget(.latest), linkTarget(.best)].compactMap { $0 })
        var removable = checkpointSets().map(\.name).filter { !protected.contains($0) }
        var excess = checkpointSets().count - keep
        while excess > 0, !removable.isEmpty {
            try discard(removable.removeFirst())
            excess -= 1
        }
    }

    func discard(_ name: String) throws {
        let trash = checkpointsDirectory.appendingPathComponent(".trash-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: trash)
        guard rename(setURL(name).path, trash.path) == 0 else {
            throw RunError.io(path: setURL(name).path, reason: "cannot remove the old checkpoint (\(String(cString: strerror(errno))))")
        }
        try? FileManager.default.removeItem(at: trash)
    }

    func removeLeftovers() {
        let manager = FileManager.default
        for directory in [checkpointsDirectory, url, samplesDirectory] {
            for name in (try? manager.contentsOfDirectory(atPath: directory.path)) ?? []
            where name.hasPrefix(".tmp-") || name.hasPrefix(".trash-") || name.hasPrefix(".link-") {
                try? manager.removeItem(at: directory.appendingPathComponent(name))
            }
        }
    }

    static func fsync(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RunError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        if Foundation.fsync(fd) != 0, errno != EINVAL {
            throw RunError.io(path: path, reason: "fsync failed (\(String(cString: strerror(errno))))")
        }
    }

    static func reason(_ error: Error) -> String {
        if let error = error as? CocoaError { return error.localizedDescription }
        return String(describing: error)
    }
}
