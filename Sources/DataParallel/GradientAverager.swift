import Dispatch
import Foundation
import NeuralNetwork

/// Averages gradient buffers over the ranks of a `Communicator` as PyTorch DDP does (Li et al. 2020): the
/// gradients are packed into buckets of at most `bucketBytes` (25 MB, DDP's default), each bucket is summed with
/// one MPI all-reduce and divided by the number of ranks. The reduction runs on the communicator's queue, so a
/// step that has other work left (CycleGAN: the discriminators' pass after the generators' backward) overlaps
/// the two (`Adam.beginStep()`); `wait()` returns when the averaged values are back in the gradient tensors.
///
/// Counters (bytes all-reduced, seconds spent in all-reduce, seconds callers waited) are kept for the log.
public final class GradientAverager: GradientReducer, @unchecked Sendable {
    public let communicator: Communicator
    public let bucketBytes: Int
    private var buckets: [[Float]] = []
    private let lock = NSLock()
    private var statistics = Statistics()

    /// Traffic and time of the reductions since the last `takeStatistics()`.
    public struct Statistics: Sendable {
        /// Gradient bytes each rank contributed to all-reduces.
        public var bytes = 0
        /// Seconds inside MPI all-reduce (on the MPI queue).
        public var reduceSeconds = 0.0
        /// Seconds the step waited for a reduction to finish (what the overlap did not hide).
        public var waitSeconds = 0.0
        public init() {}
    }

    public init(communicator: Communicator, bucketBytes: Int = 25 << 20) {
        self.communicator = communicator
        self.bucketBytes = max(bucketBytes, 4)
    }

    /// The counters, reset.
    public func takeStatistics() -> Statistics {
        lock.lock(); defer { lock.unlock() }
        let s = statistics
        statistics = Statistics()
        return s
    }

    /// The buckets of `gradients`: consecutive tensors packed up to `bucketBytes` (a larger tensor is a bucket of
    /// its own).
    static func plan(_ counts: [Int], bucketFloats: Int) -> [Range<Int>] {
        var ranges: [Range<Int>] = [], start = 0, floats = 0
        for (i, n) in counts.enumerated() {
            if i > start, floats + n > bucketFloats {
                ranges.append(start..<i)
                start = i
                floats = 0
            }
            floats += n
        }
        if start < counts.count { ranges.append(start..<counts.count) }
        return ranges
    }

    public func beginReduction(_ gradients: [Tensor]) -> PendingReduction {
        let ranges = Self.plan(gradients.map(\.count), bucketFloats: bucketBytes / 4)
        let scale = 1 / Float(communicator.size)
        let group = DispatchGroup()
        group.enter()
        let communicator = self.communicator
        communicator.queue.async { [self] in
            let start = DispatchTime.now().uptimeNanoseconds
            var bytes = 0
            for (b, range) in ranges.enumerated() {
                let total = range.reduce(0) { $0 + gradients[$1].count }
                if buckets.count <= b { buckets.append([]) }
                if buckets[b].count != total { buckets[b] = [Float](repeating: 0, count: total) }
                buckets[b].withUnsafeMutableBufferPointer { bucket in
                    let base = bucket.baseAddress!
                    var offset = 0
                    for i in range {
                        let g = gradients[i]
                        (base + offset).update(from: g.pointer, count: g.count)
                        offset += g.count
                    }
                    do { try Communicator.sumInPlace(base, count: total) } catch {
                        FileHandle.standardError.write(Data("mr2ct: rank \(communicator.rank): \(error); ending the job\n".utf8))
                        communicator.abort(code: 1)
                    }
                    offset = 0
                    for i in range {
                        let g = gradients[i], p = g.pointer
                        for k in 0..<g.count { p[k] = base[offset + k] * scale }
                        offset += g.count
                    }
                }
                bytes += total * 4
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            lock.lock()
            statistics.bytes += bytes
            statistics.reduceSeconds += seconds
            lock.unlock()
            group.leave()
        }
        return PendingReduction { [self] in
            let start = DispatchTime.now().uptimeNanoseconds
            group.wait()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            lock.lock()
            statistics.waitSeconds += seconds
            lock.unlock()
        }
    }
}
