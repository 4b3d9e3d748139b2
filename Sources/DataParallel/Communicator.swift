import CMPI
import Dispatch
import Foundation

/// The processes of a data-parallel job (MPI_COMM_WORLD of Open MPI, started by `mpirun -n N` or Slurm's
/// `srun --mpi=pmix`), behind the C bridge `CMPI`. `world()` is nil unless a launcher started this process with
/// more than one process in the job: a run without mpirun never initialises MPI and works as before.
///
/// Every MPI call is made on one serial queue (MPI_THREAD_SERIALIZED), so a gradient reduction can run on it while
/// the compute threads go on with the backward pass (`GradientAverager`).
public final class Communicator: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// The queue every MPI call runs on.
    let queue = DispatchQueue(label: "mr2ct.mpi")

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    nonisolated(unsafe) private static var shared: Communicator?
    nonisolated(unsafe) private static var initialised = false
    private static let lock = NSLock()

    /// The job's communicator when launched by mpirun/srun with more than one process (MPI initialised once, on
    /// the first call), else nil.
    public static func world() throws -> Communicator? {
        lock.lock(); defer { lock.unlock() }
        if initialised { return shared }
        initialised = true
        guard mr2ct_mpi_launched() != 0 else { return nil }
        var provided: Int32 = 0
        try check(mr2ct_mpi_init(&provided), "MPI_Init_thread")
        guard provided >= 2 else { throw DataParallelError.threadSupport(provided: Int(provided)) }
        var rank: Int32 = 0, size: Int32 = 0
        try check(mr2ct_mpi_rank(&rank), "MPI_Comm_rank")
        try check(mr2ct_mpi_size(&size), "MPI_Comm_size")
        shared = Communicator(rank: Int(rank), size: Int(size))
        return shared
    }

    public var isRoot: Bool { rank == 0 }

    /// Whether a launcher started this process as one of several (without initialising MPI).
    public static var isLaunchedInParallel: Bool { mr2ct_mpi_launched() != 0 }

    static func check(_ code: Int32, _ operation: String) throws {
        if code != 0 { throw DataParallelError.mpi(operation: operation, code: Int(code)) }
    }

    /// In-place sum of `values` over all ranks.
    public func sum(_ values: inout [Double]) throws {
        let count = Int64(values.count)
        try values.withUnsafeMutableBufferPointer { buffer in
            let pointer = buffer.baseAddress
            try queue.sync { try Self.check(mr2ct_mpi_allreduce_sum_f64(pointer, count), "MPI_Allreduce") }
        }
    }

    /// The mean of `values` over all ranks.
    public func mean(_ values: [Double]) throws -> [Double] {
        var v = values
        try sum(&v)
        return v.map { $0 / Double(size) }
    }

    /// The largest of every rank's `value`.
    public func maximum(_ value: UInt64) throws -> UInt64 {
        var v = value
        try queue.sync { try Self.check(mr2ct_mpi_allreduce_max_u64(&v, 1), "MPI_Allreduce") }
        return v
    }

    /// Every rank's `value`, in rank order.
    public func gather(_ value: UInt64) throws -> [UInt64] {
        var all = [UInt64](repeating: 0, count: size)
        try all.withUnsafeMutableBufferPointer { buffer in
            let pointer = buffer.baseAddress
            try queue.sync { try Self.check(mr2ct_mpi_allgather_u64(value, pointer), "MPI_Allgather") }
        }
        return all
    }

    /// Waits until every rank is here.
    public func barrier() throws {
        try queue.sync { try Self.check(mr2ct_mpi_barrier(), "MPI_Barrier") }
    }

    /// Ends every process of the job with `code` (MPI_Abort): what a rank does after a failure the others cannot
    /// see, so that none waits forever in a collective.
    public func abort(code: Int32) -> Never {
        mr2ct_mpi_abort(code)
        exit(code)
    }

    /// MPI_Finalize (after the last collective; the process should exit soon after).
    public func finalize() {
        queue.sync { _ = mr2ct_mpi_finalize() }
    }

    /// An all-reduce of raw floats on the MPI queue (the caller is on it).
    static func sumInPlace(_ pointer: UnsafeMutablePointer<Float>, count: Int) throws {
        try check(mr2ct_mpi_allreduce_sum_f32(pointer, Int64(count)), "MPI_Allreduce")
    }
}

/// What can go wrong in a data-parallel job.
public enum DataParallelError: Error, CustomStringConvertible, Equatable {
    /// An MPI call returned an error code.
    case mpi(operation: String, code: Int)
    /// The MPI library gives less than MPI_THREAD_SERIALIZED.
    case threadSupport(provided: Int)
    /// The replicas' weights differ after `iteration` (hashes compared every K iterations): `ranks` differ from rank 0.
    case replicasDiverged(iteration: Int, ranks: [Int])
    /// The model or its data cannot be split over ranks.
    case unsupported(reason: String)

    public var description: String {
        switch self {
        case let .mpi(operation, code): "MPI: \(operation) failed (error \(code))"
        case let .threadSupport(provided): "MPI: the library provides thread level \(provided), MR2CT needs MPI_THREAD_SERIALIZED (2)"
        case let .replicasDiverged(iteration, ranks):
            "data-parallel replicas diverged at iteration \(iteration): the weights of rank "
                + ranks.map(String.init).joined(separator: ", ") + " differ from rank 0's (weight hash); stopping every rank"
        case let .unsupported(reason): "data-parallel training: \(reason)"
        }
    }
}
