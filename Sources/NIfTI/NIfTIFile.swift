import Foundation

/// What to do with NaN or ±Inf voxel values (after scaling).
public enum NonFinitePolicy: String, Sendable, Codable, CaseIterable {
    /// Refuse the file, reporting how many voxels are not finite (the default).
    case refuse
    /// Replace each non-finite voxel with 0 and report how many were replaced.
    case replaceWithZero
}

/// Options for `NIfTIFile.read`.
public struct NIfTIReadOptions: Sendable {
    /// Which 3-D volume of a 4-D (or higher) file to read, counting over dim[4]·…·dim[7]; nil refuses such files.
    public var volumeIndex: Int?
    /// The largest 3-D voxel count accepted; checked on the header before anything is allocated.
    public var maxVoxels: Int = 1 << 30
    /// NaN/Inf voxels: refused (default) or replaced with 0.
    public var nonFinite: NonFinitePolicy = .refuse

    public init(volumeIndex: Int? = nil, maxVoxels: Int = 1 << 30, nonFinite: NonFinitePolicy = .refuse) {
        self.volumeIndex = volumeIndex
        self.maxVoxels = maxVoxels
        self.nonFinite = nonFinite
    }
}

/// A NIfTI file that cannot be read or written; `description` is one line, "<path>: <reason>".
public struct NIfTIError: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// A volume and what reading it took: how many non-finite voxels were replaced (policy `.replaceWithZero`).
public struct NIfTIReadResult: Sendable {
    public var volume: Volume
    /// The number of NaN/±Inf voxels replaced with 0 (always 0 under `.refuse`).
    public var replacedNonFiniteVoxels: Int
}

/// Reading and writing NIfTI-1 / NIfTI-2 volumes (.nii, .nii.gz, .hdr/.img pairs) on nifti_clib, with the header
/// validated by MR2CT first (nifti_clib trusts its input).
public enum NIfTIFile {
    /// The suffixes of a volume file (case-insensitive); `.img` files are reached through their `.hdr`.
    static let volumeSuffixes = [".nii.gz", ".hdr.gz", ".nii", ".hdr"]

    /// True for names ending in .nii, .nii.gz, .hdr or .hdr.gz (not .img, not folders' names).
    public static func isVolumeFile(_ url: URL) -> Bool {
        let name = url.lastPathComponent.lowercased()
        return volumeSuffixes.contains { name.hasSuffix($0) && name.count > $0.count }
    }

    /// The name without its volume suffix: "sub01" for sub01.nii.gz (or the name without its last extension).
    public static func stem(of url: URL) -> String {
        let name = url.lastPathComponent
        let lower = name.lowercased()
        for suffix in volumeSuffixes + [".img.gz", ".img"] where lower.hasSuffix(suffix) && name.count > suffix.count {
            return String(name.dropLast(suffix.count))
        }
        return url.deletingPathExtension().lastPathComponent
    }

    /// The files a volume path stands for: the path itself and, for an .hdr/.img pair, its partner file(s)
    /// (x.hdr → x.img and x.img.gz; x.img → x.hdr …), whether or not they exist.
    public static func companionFiles(of url: URL) -> [URL] {
        let path = url.path, lower = path.lowercased()
        let pairs: [(String, [String])] = [(".hdr.gz", [".img.gz", ".img"]), (".hdr", [".img", ".img.gz"]),
                                           (".img.gz", [".hdr.gz", ".hdr"]), (".img", [".hdr", ".hdr.gz"])]
        guard let (suffix, partners) = pairs.first(where: { lower.hasSuffix($0.0) && lower.count > $0.0.count }) else {
            return [url]
        }
        let stem = String(path.dropLast(suffix.count))
        return [url] + partners.map { URL(fileURLWithPath: stem + $0) }
    }

    /// The volume files in a folder (not recursive, hidden files skipped), sorted by name.
    public static func volumeFiles(in directory: URL) throws -> [URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw NIfTIError(path: directory.path, reason: isDirectory(directory.path) ? "cannot list folder"
                                                                                        : "no such folder")
        }
        return names.filter { !$0.hasPrefix(".") }.sorted()
            .map { directory.appendingPathComponent($0) }
            .filter { isVolumeFile($0) && !isDirectory($0.path) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The nifti_clib and zlib versions linked into MR2CT, e.g. "nifti library version 2.1.0 …".
    public static var libraryVersion: String { NIfTIBridge.libraryVersion }
}
