import Foundation

/// Shared helpers for MR2CT's test targets: fixture locations, temporary folders, running the built tool.
public enum TestSupport {
    /// The folder of committed test fixtures (Tests/TestSupport/Fixtures), copied as a bundle resource.
    public static var fixturesDirectory: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    }

    /// The package root (the folder holding Package.swift), found from this source file's path.
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A fresh, empty temporary folder, removed by the caller (or left for the OS) when the test ends.
    public static func makeTemporaryDirectory(_ label: String = "mr2ct-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

extension TestSupport {
    /// The folder holding the built products of this configuration (where `mr2ct` is linked).
    public static var productsDirectory: URL {
        Bundle.module.bundleURL.deletingLastPathComponent()
    }

    /// The built `mr2ct` executable.
    public static var mr2ctExecutable: URL { productsDirectory.appendingPathComponent("mr2ct") }

    /// This CPU's feature flags, as /proc/cpuinfo lists them for its first processor ("avx2", "fma", "avx512f", ...);
    /// empty where there is no /proc/cpuinfo.
    public static var cpuFlags: Set<String> {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = cpu.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        return Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
    }

    /// The result of running a process to completion.
    public struct ProcessResult: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs the built `mr2ct` with `arguments`, feeding `stdin` (if any), and waits for it to exit.
    @discardableResult
    public static func runMR2CT(_ arguments: [String], stdin: String? = nil,
                                environment: [String: String]? = nil,
                                currentDirectory: URL? = nil) throws -> ProcessResult {
        try run(mr2ctExecutable, arguments, stdin: stdin, environment: environment, currentDirectory: currentDirectory)
    }

    /// Runs `executable` with `arguments` and collects its exit status, stdout and stderr.
    public static func run(_ executable: URL, _ arguments: [String], stdin: String? = nil,
                           environment: [String: String]? = nil,
                           currentDirectory: URL? = nil) throws -> ProcessResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe
        try process.run()
        if let stdin { inPipe.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? inPipe.fileHandleForWriting.close()
        // Read both pipes concurrently so that neither fills up and blocks the child.
        let errData = LockedData()
        let errThread = Thread { errData.set(errPipe.fileHandleForReading.readDataToEndOfFile()) }
        errThread.start()
        let out = outPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errData.isSet { usleep(1000) }
        return ProcessResult(status: process.terminationStatus,
                             stdout: String(decoding: out, as: UTF8.self),
                             stderr: String(decoding: errData.value, as: UTF8.self))
    }
}

/// A Data box written by one thread and read by another.
public final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var done = false
    public init() {}
    public func set(_ d: Data) { lock.lock(); data = d; done = true; lock.unlock() }
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return done }
    public var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}
