import Foundation

/// What kind of file system object a path names, found with stat(2)/lstat(2) before anything opens it: opening a
/// FIFO blocks until a writer appears, a character device such as /dev/zero never ends, and a symlink loop or a
/// dangling link deserve their own words rather than "no such file".
public enum FileKind: Sendable, Equatable {
    case regular(size: Int64)
    case directory
    case fifo
    case characterDevice
    case blockDevice
    case socket
    /// A chain of symbolic links that never ends (ELOOP).
    case symlinkLoop
    /// A symbolic link whose target does not exist.
    case danglingSymlink
    case missing
    /// stat(2) failed for another reason (its strerror text).
    case unreadable(String)

    /// The kind of `path`, following symbolic links.
    public static func of(_ path: String) -> FileKind {
        var info = stat()
        if stat(path, &info) == 0 { return kind(info) }
        let error = errno
        switch error {
        case ELOOP: return .symlinkLoop
        case ENOENT:
            var link = stat()
            return lstat(path, &link) == 0 && (link.st_mode & S_IFMT) == S_IFLNK ? .danglingSymlink : .missing
        default: return .unreadable(String(cString: strerror(error)))
        }
    }

    /// The kind of an open descriptor (fstat(2)).
    public static func of(descriptor fd: Int32) -> FileKind {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .unreadable(String(cString: strerror(errno))) }
        return kind(info)
    }

    private static func kind(_ info: stat) -> FileKind {
        switch info.st_mode & S_IFMT {
        case S_IFREG: .regular(size: Int64(info.st_size))
        case S_IFDIR: .directory
        case S_IFIFO: .fifo
        case S_IFCHR: .characterDevice
        case S_IFBLK: .blockDevice
        case S_IFSOCK: .socket
        default: .unreadable("unknown file type")
        }
    }

    /// Why a path of this kind cannot be read as a file ("is a FIFO", "symlink loop", …); nil for a regular file.
    /// `folder` words the directory case (e.g. "is a folder, not a volume file").
    public func problemAsFile(folder: String = "is a folder, not a file") -> String? {
        switch self {
        case .regular: nil
        case .directory: folder
        case .fifo: "is a FIFO (named pipe), not a regular file"
        case .characterDevice: "is a character device, not a regular file"
        case .blockDevice: "is a block device, not a regular file"
        case .socket: "is a socket, not a regular file"
        case .symlinkLoop: "symlink loop (too many levels of symbolic links)"
        case .danglingSymlink: "dangling symbolic link (its target does not exist)"
        case .missing: "no such file"
        case .unreadable(let reason): "cannot read: \(reason)"
        }
    }
}

/// The identity of an existing file (device and inode, after following links): two paths name the same file
/// exactly when their identities are equal, whatever their spelling (`./a.nii`, a hard link, a symlink).
public struct FileIdentity: Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64

    /// nil when `path` does not exist (or cannot be stat'ed).
    public init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}

/// The checks before a command writes an output file: never over one of its inputs (compared by device and inode,
/// so `./a.nii`, `a.nii` and a link to it are all caught), and never over an existing file unless asked.
public enum OutputSafety {
    /// Why `outputs` (an output file and its companions, e.g. the .img of an .hdr) may not be written, or nil.
    /// `inputs` are every file read (with their companions). An output that is an input is refused even with
    /// `overwrite`; an existing output without it.
    public static func problem(outputs: [String], inputs: [String], overwrite: Bool) -> String? {
        let inputIdentities = Set(inputs.compactMap(FileIdentity.init))
        for output in outputs {
            if let identity = FileIdentity(output), inputIdentities.contains(identity) {
                return "is the input itself: the output would replace the volume being read (choose another OUT)"
            }
        }
        if !overwrite, let existing = outputs.first(where: { FileKind.of($0) != .missing }) {
            return existing == outputs.first ? "exists (use --overwrite to replace it)"
                                             : "\(existing) exists (use --overwrite to replace it)"
        }
        return nil
    }
}

/// An output folder a command is about to write into.
public enum OutputFolder {
    /// Creates `url` (and its parents) if missing; why files cannot be written there, or nil. Checked before any
    /// compute, so that a long batch does not fail at its first write.
    public static func problem(_ url: URL) -> String? {
        switch FileKind.of(url.path) {
        case .directory: break
        case .missing, .danglingSymlink, .unreadable:
            guard mkdirParents(url.path) else {
                return "cannot create the output folder (\(String(cString: strerror(errno))))"
            }
        case .symlinkLoop: return "symlink loop (too many levels of symbolic links)"
        default: return "is not a folder"
        }
        guard access(url.path, W_OK | X_OK) == 0 else {
            return "cannot write in the output folder (\(String(cString: strerror(errno))))"
        }
        return nil
    }

    /// mkdir -p, keeping errno of the step that failed.
    private static func mkdirParents(_ path: String) -> Bool {
        if mkdir(path, 0o755) == 0 || (errno == EEXIST && FileKind.of(path) == .directory) { return true }
        guard errno == ENOENT else { return false }
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty, parent != path, mkdirParents(parent) else { return false }
        return mkdir(path, 0o755) == 0 || (errno == EEXIST && FileKind.of(path) == .directory)
    }
}

/// This process's resource usage (getrusage(2)).
public enum ResourceUsage {
    /// The peak resident set size so far, in bytes (ru_maxrss is in kilobytes on Linux).
    public static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Int(usage.ru_maxrss) * 1024
    }
}
