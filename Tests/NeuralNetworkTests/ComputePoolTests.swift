import Foundation
import Testing
@testable import NeuralNetwork

/// `ComputePool`, the spinning fork-join behind `ComputeThreads` and `parallelFor`: every piece of every fork runs
/// exactly once and on its own index, forks that meet a busy pool (nested or from other threads) are refused and
/// run by their caller, and workers that were parked or have fallen asleep are woken by the next fork.
@Suite(.timeLimit(.minutes(1))) struct ComputePoolTests {
    /// Counts per piece index, written only by the piece with that index.
    final class Counts: @unchecked Sendable {
        var values: UnsafeMutablePointer<Int>
        let count: Int
        init(_ count: Int) {
            self.count = count
            values = .allocate(capacity: count)
            values.initialize(repeating: 0, count: count)
        }
        deinit { values.deallocate() }
        var array: [Int] { Array(UnsafeBufferPointer(start: values, count: count)) }
    }

    @Test func everyPieceRunsOnceOnItsIndex() {
        let pool = ComputePool()
        let counts = Counts(4)
        let forks = 3000
        var refused = 0
        for f in 0..<forks {
            let n = 2 + f % 3   // 2, 3 and 4 pieces: workers are started as needed, idle ones count themselves off
            if !pool.run(n, { i in counts.values[i] += 1 }) { refused += 1 }
        }
        #expect(refused == 0)
        // Pieces 0 and 1 run in every fork, piece 2 in two of three, piece 3 in one of three.
        #expect(counts.array == [forks, forks, 2 * forks / 3, forks / 3])
    }

    @Test func aForkInsideAForkIsRefusedAndRunsInline() {
        let pool = ComputePool()
        let inner = Counts(2)
        var innerAccepted = [Bool](repeating: true, count: 2)
        innerAccepted.withUnsafeMutableBufferPointer { accepted in
            let accepted = UncheckedBox(accepted.baseAddress!)
            let outer = pool.run(2) { i in
                accepted.value[i] = pool.run(2) { _ in }
                inner.values[i] += 1
            }
            #expect(outer)
        }
        #expect(innerAccepted == [false, false])
        #expect(inner.array == [1, 1])
    }

    /// Four threads fork at once through `parallelFor` (the shared pool): one of them gets the pool at a time, the
    /// others run the same two chunks one after the other; every chunk's sum is the same bits either way.
    @Test func concurrentCallersAllFinishWithTheRightResults() {
        let threads = ComputeThreads.count
        defer { ComputeThreads.set(threads) }
        ComputeThreads.set(2)
        let n = 10_000
        let input = (0..<n).map(Double.init)
        let halves = (input[0..<n / 2].reduce(0, +), input[(n / 2)...].reduce(0, +))
        let results = Counts(4 * 200)
        input.withUnsafeBufferPointer { x in
            let x = UncheckedBox(x.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: 4) { caller in
                for r in 0..<200 {
                    var partial = [Double](repeating: 0, count: 2)
                    partial.withUnsafeMutableBufferPointer { p in
                        let p = UncheckedBox(p.baseAddress!)
                        parallelFor(n, minimumPerThread: 1000) { range in
                            var s = 0.0
                            for i in range { s += x.value[i] }
                            p.value[range.lowerBound == 0 ? 0 : 1] += s
                        }
                    }
                    results.values[caller * 200 + r] = (partial[0], partial[1]) == halves ? 1 : 0
                }
            }
        }
        #expect(results.array.allSatisfy { $0 == 1 })
    }

    @Test func parkedAndSleepingWorkersAreWokenByTheNextFork() {
        let pool = ComputePool()
        let counts = Counts(2)
        #expect(pool.run(2) { i in counts.values[i] += 1 })
        pool.park()
        usleep(2_000)   // the worker sees the request and sleeps
        #expect(pool.run(2) { i in counts.values[i] += 1 })
        usleep(UInt32(ComputePool.spinDuration / 1000) * 3)   // past its spin: asleep on its own
        #expect(pool.run(2) { i in counts.values[i] += 1 })
        #expect(counts.array == [3, 3])
    }
}
