import DataParallel
import Foundation
import NeuralNetwork

/// Which samples of a global batch one process trains on: iteration `i` of a job of `ranks` processes, each taking
/// `batchSize` samples, uses the global sample indices `i · G … i · G + G − 1` (G = ranks × batchSize, the
/// effective batch), and rank `r` takes `i · G + r · batchSize …` of them. A data source maps a global sample index
/// to a sample exactly as it maps an iteration at batch 1 (sample `i` of a one-process batch-1 run is its
/// iteration-`i` sample), so batch 1 on one process is the run of before, and N ranks × batch B see the same
/// samples as one process with batch N × B.
public struct BatchPlan: Sendable, Hashable {
    public var batchSize: Int
    public var rank: Int
    public var ranks: Int

    public init(batchSize: Int = 1, rank: Int = 0, ranks: Int = 1) {
        precondition(batchSize >= 1 && ranks >= 1 && (0..<ranks).contains(rank), "BatchPlan: \(batchSize) × rank \(rank) of \(ranks)")
        self.batchSize = batchSize
        self.rank = rank
        self.ranks = ranks
    }

    /// One process, `batchSize` samples per iteration.
    public static func single(batchSize: Int) -> BatchPlan { BatchPlan(batchSize: batchSize) }

    /// Samples per iteration over all ranks.
    public var effectiveBatchSize: Int { batchSize * ranks }

    /// This rank's global sample indices at 0-based iteration `iteration`.
    public func samples(atIteration iteration: Int) -> Range<Int> {
        let start = iteration * effectiveBatchSize + rank * batchSize
        return start..<(start + batchSize)
    }
}

/// Training data that knows which rank's share it gives (`TrainingLoop` checks it against the communicator, so a
/// family whose data is not split cannot silently train every rank on the same samples).
public protocol ShardedTrainingData: TrainingData {
    var batchPlan: BatchPlan { get }
}

/// A data-parallel session of the loop: the communicator and how often the replicas' weights are compared.
public struct DataParallelSession {
    public let communicator: Communicator
    /// Compare the weight hashes every this many iterations (and at the end and at a stop).
    public var hashEvery: Int
    /// Packs gradients into all-reduce buckets of at most this many bytes (DDP's 25 MB).
    public var bucketBytes: Int

    public init(communicator: Communicator, hashEvery: Int = 50, bucketBytes: Int = 25 << 20) {
        self.communicator = communicator
        self.hashEvery = max(1, hashEvery)
        self.bucketBytes = bucketBytes
    }

    public var isRoot: Bool { communicator.isRoot }
}

/// A 64-bit FNV-1a hash of the bit patterns of parameter values (the replicas' identity check).
public enum WeightHash {
    public static func of(_ parameters: [Parameter]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for p in parameters {
            let x = p.value.pointer
            for i in 0..<p.value.count {
                h = (h ^ UInt64(x[i].bitPattern)) &* 0x0000_0100_0000_01b3
            }
        }
        return h
    }
}
