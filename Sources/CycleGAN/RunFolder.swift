import Foundation
import MR2CTSupport

/// A training run's folder:
///
///     <run>/config.json            the run's configuration (written once, checked on every resume)
///     <run>/log.ndjson             one JSON line per iteration and per validation pass
///     <run>/report.html            the offline report (curves, latest pictures, configuration, validation)
///     <run>/samples/iter_0000500.png
///     <run>/checkpoints/iter_0000500/   complete, immutable checkpoint sets
///     <run>/checkpoints/latest -> iter_0000500   (symlink, replaced atomically)
///     <run>/checkpoints/best   -> iter_0000400   (symlink; lowest validation MAE)
///     <run>/cache/                  the loader's prepared slices (safe to delete)
///
/// Crash safety: a set is written into a hidden `.tmp-*` folder, every file and the folder are fsynced, and the
/// folder is renamed to its final name (rename(2) is atomic). `latest` and `best` are replaced by renaming a new
/// symlink over the old one, so at every moment they name a complete set. A set is deleted (rotation) by renaming
/// it to a hidden `.trash-*` name first, and never while `latest` or `best` names it. Hidden leftovers of a killed
/// process are removed when the folder is next opened. A lock file keeps two processes out of one run folder.
public final class RunFolder {
    public let url: URL
    private var lockDescriptor: Int32 = -1

    public var configurationURL: URL { url.appendingPathComponent("config.json") }
    public var logURL: URL { url.appendingPathComponent("log.ndjson") }
    public var reportURL: URL { url.appendingPathComponent("report.html") }
    public var samplesDirectory: URL { url.appendingPathComponent("samples", isDirectory: true) }
    public var checkpointsDirectory: URL { url.appendingPathComponent("checkpoints", isDirectory: true) }
    /// The training loader's slice cache (Int16 slices at network size; a resumed run starts without re-reading).
    public var cacheDirectory: URL { url.appendingPathComponent("cache", isDirectory: true) }
    public var latestURL: URL { checkpointsDirectory.appendingPathComponent("latest") }
    public var bestURL: URL { checkpointsDirectory.appendingPathComponent("best") }

    /// The name of the set saved after `iteration` completed iterations.
    public static func setName(iteration: Int) -> String {
        "iter_" + String(repeating: "0", count: max(0, 7 - String(iteration).count)) + String(iteration)
    }

    /// The iteration of a set name (`iter_0000500` → 500), nil for other names.
    public static func iteration(ofSetName name: String) -> Int? {
        guard name.hasPrefix("iter_"), let value = Int(name.dropFirst(5)), value >= 0 else { return nil }
        return value
    }

    /// Opens (creating if needed) the run folder at `url` and takes its lock.
    /// Throws when the path is not a folder, cannot be created, or another process holds the lock.
    public init(url: URL) throws {
        self.url = url.standardizedFileURL
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: self.url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw TrainingError(path: self.url.path, reason: "the run folder path is a file, not a folder")
        }
        do {
            try manager.createDirectory(at: checkpointsDirectory, withIntermediateDirectories: true)
            try manager.createDirectory(at: samplesDirectory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError(path: self.url.path, reason: "cannot create the run folder (\(Self.reason(error)))")
        }
        let lockPath = self.url.appendingPathComponent(".lock").path
        lockDescriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockDescriptor >= 0 else {
            throw TrainingError(path: lockPath, reason: "cannot open the run folder's lock file (\(String(cString: strerror(errno))))")
        }
        if flock(lockDescriptor, LOCK_EX | LOCK_NB) != 0 {
            close(lockDescriptor)
            lockDescriptor = -1
            throw TrainingError(path: self.url.path, reason: "the run folder is in use by another mr2ct train process")
        }
        removeLeftovers()
    }

    deinit {
        if lockDescriptor >= 0 { flock(lockDescriptor, LOCK_UN); close(lockDescriptor) }
    }

    /// True when the folder holds a run (a configuration was written).
    public var hasConfiguration: Bool { FileManager.default.fileExists(atPath: configurationURL.path) }

    // MARK: Checkpoint sets

    /// The complete sets on disk, oldest first.
    public func checkpointSets() -> [(name: String, iteration: Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsDirectory.path)) ?? []
        return names.compactMap { name in Self.iteration(ofSetName: name).map { (name, $0) } }
            .sorted { $0.1 < $1.1 }
    }

    /// The folder of set `name`.
    public func setURL(_ name: String) -> URL { checkpointsDirectory.appendingPathComponent(name, isDirectory: true) }

    /// The set name a link (`latest`, `best`) points to, nil when the link is absent or names no set.
    public func linkTarget(_ link: String) -> String? {
        let path = checkpointsDirectory.appendingPathComponent(link).path
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path),
              Self.iteration(ofSetName: target) != nil,
              FileManager.default.fileExists(atPath: setURL(target).path) else { return nil }
        return target
    }

    /// Writes a complete set named for `iteration`: `produce` fills a fresh hidden folder, whose files and the
    /// folder itself are then fsynced and which is renamed into place. Returns the set's name.
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
            let final = setURL(name)
            if manager.fileExists(atPath: final.path) {
                // A set for this iteration left by a process killed before it moved `latest`: same iteration,
                // replaced by the fresh one (neither link names it).
                try discard(name)
            }
            guard rename(temporary.path, final.path) == 0 else {
                throw TrainingError(path: final.path, reason: "cannot move the checkpoint into place (\(String(cString: strerror(errno))))")
            }
            try Self.fsync(path: checkpointsDirectory.path)
        } catch {
            try? manager.removeItem(at: temporary)
            if let error = error as? TrainingError, !error.path.hasPrefix(temporary.path) { throw error }
            // Name the file inside the set, not the temporary folder it was written in.
            let reason = Self.reason(error).replacingOccurrences(of: temporary.path + "/", with: "")
            throw TrainingError(path: setURL(name).path, reason: "cannot write the checkpoint (\(reason))")
        }
        return name
    }

    /// Points `link` (`latest` or `best`) at set `name`, atomically (a new symlink renamed over the old one).
    public func setLink(_ link: String, to name: String) throws {
        let temporary = checkpointsDirectory.appendingPathComponent(".link-\(link)-\(getpid())").path
        unlink(temporary)
        guard symlink(name, temporary) == 0,
              rename(temporary, checkpointsDirectory.appendingPathComponent(link).path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw TrainingError(path: checkpointsDirectory.appendingPathComponent(link).path,
                                reason: "cannot update the link (\(reason))")
        }
        try Self.fsync(path: checkpointsDirectory.path)
    }

    /// Deletes the oldest sets so that at most `keep` remain, never the targets of `latest` or `best`
    /// (`keep` 0 keeps every set).
    public func rotate(keep: Int) throws {
        guard keep > 0 else { return }
        let protected = Set([linkTarget("latest"), linkTarget("best")].compactMap { $0 })
        var removable = checkpointSets().map(\.name).filter { !protected.contains($0) }
        let total = checkpointSets().count
        var excess = total - keep
        while excess > 0, !removable.isEmpty {
            try discard(removable.removeFirst())
            excess -= 1
        }
    }

    /// Removes set `name`: renamed to a hidden name first, so no half-deleted set ever carries a set name.
    func discard(_ name: String) throws {
        let trash = checkpointsDirectory.appendingPathComponent(".trash-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: trash)
        guard rename(setURL(name).path, trash.path) == 0 else {
            throw TrainingError(path: setURL(name).path, reason: "cannot remove the old checkpoint (\(String(cString: strerror(errno))))")
        }
        try? FileManager.default.removeItem(at: trash)
    }

    /// Removes the hidden leftovers (`.tmp-*`, `.trash-*`, `.link-*`) of a killed process.
    func removeLeftovers() {
        let manager = FileManager.default
        for directory in [checkpointsDirectory, url, samplesDirectory] {
            for name in (try? manager.contentsOfDirectory(atPath: directory.path)) ?? []
            where name.hasPrefix(".tmp-") || name.hasPrefix(".trash-") || name.hasPrefix(".link-") {
                try? manager.removeItem(at: directory.appendingPathComponent(name))
            }
        }
    }

    // MARK: Helpers

    /// fsync(2) on a file or a folder.
    static func fsync(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TrainingError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        if Foundation.fsync(fd) != 0, errno != EINVAL {
            throw TrainingError(path: path, reason: "fsync failed (\(String(cString: strerror(errno))))")
        }
    }

    static func reason(_ error: Error) -> String {
        if let error = error as? CocoaError { return error.localizedDescription }
        return String(describing: error)
    }
}
