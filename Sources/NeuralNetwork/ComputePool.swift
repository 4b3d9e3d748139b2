import Foundation
import Synchronization

/// The persistent worker threads behind `ComputeThreads`' forks and `parallelFor`: a fork-join whose workers wait
/// for the next piece of work by spinning for a short while before they sleep, as OpenMP's runtimes do.
///
/// libdispatch's `concurrentPerform` wakes a sleeping worker for every fork. On the team's 2-core VM (Zen 5,
/// 2026-12-03) a fork of two 37 µs halves after 37 µs of serial work took 146 µs against 116 µs for all three
/// pieces on one thread: the caller had done both halves before the worker woke up. A single-slice 96² inference
/// (about a hundred forks of tens of microseconds) therefore ran no faster on two threads than on one. Here the
/// workers spin for `spinDuration` after each piece of work, so a fork that follows soon starts at once.
///
/// Spinning takes a core, so a worker stops spinning (and sleeps until the next fork) when `park()` says that other
/// threads are about to want the cores — OpenBLAS's and oneDNN's own threads, which run outside forks — and when
/// more compute threads are asked for than the machine has cores; while it spins, and while the caller waits for
/// the workers, they yield the core to any other thread that wants it (`sched_yield`), so an oversubscribed
/// machine (two processes on two cores) loses timeslices to no spinning thread.
final class ComputePool: @unchecked Sendable {
    static let shared = ComputePool()

    /// How long a worker spins for the next fork before it sleeps.
    static let spinDuration: UInt64 = 200_000   // ns

    /// Incremented by each fork after its work is published; a worker runs a piece when it sees a new value.
    private let generation = Atomic<Int>(0)
    /// Workers that have not yet finished the current fork's generation.
    private let remaining = Atomic<Int>(0)
    /// Set while a fork runs (or is being set up); a second fork meanwhile runs inline (nested or concurrent).
    private let busy = Atomic<Bool>(false)
    /// Asks spinning workers to sleep now: cleared by the next fork.
    private let parked = Atomic<Bool>(false)

    private let condition = NSCondition()
    /// Sleeping workers (under `condition`).
    private var sleepers = 0
    /// Started workers (under `condition`); only ever grows.
    private var started = 0
    /// Workers taking part in the current fork's accounting: fixed from the fork's start to its end.
    private var participants = 0

    /// The current fork's body and piece count, written before `generation` is incremented.
    private var body: ((Int) -> Void)?
    private var pieces = 0

    /// Runs `body(0)` … `body(n − 1)` at once, piece 0 on the calling thread and piece i on worker i, and returns
    /// when all have finished; false (nothing run) when another fork is in progress, so the caller runs the pieces
    /// itself.
    func run(_ n: Int, _ work: (Int) -> Void) -> Bool {
        guard n > 1 else { for i in 0..<n { work(i) }; return true }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        withoutActuallyEscaping(work) { work in
            condition.lock()
            while started < n - 1 { startWorker(index: started + 1); started += 1 }
            participants = started
            body = work
            pieces = n
            remaining.store(participants, ordering: .relaxed)
            parked.store(false, ordering: .relaxed)
            generation.add(1, ordering: .releasing)
            if sleepers > 0 { condition.broadcast() }
            condition.unlock()

            work(0)
            // After a few microseconds, yield on each round: a worker that lost its core gets it back at once.
            var spins = 0
            while remaining.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > 4096 { sched_yield() }
            }
            body = nil
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Tells spinning workers to sleep until the next fork: before a call that runs threads of its own.
    func park() {
        if !parked.load(ordering: .relaxed) { parked.store(true, ordering: .relaxed) }
    }

    private func startWorker(index: Int) {
        let thread = Thread { [self] in workerLoop(index: index) }
        thread.stackSize = 8 << 20
        thread.name = "mr2ct-compute-\(index)"
        thread.start()
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var current = generation.load(ordering: .acquiring)
            if current == seen {
                let spin = ComputeThreads.count <= ProcessInfo.processInfo.activeProcessorCount
                let deadline = DispatchTime.now().uptimeNanoseconds + (spin ? Self.spinDuration : 0)
                var spins = 0
                while current == seen {
                    spins += 1
                    if spins & 255 == 0 || !spin {
                        sched_yield()   // lets a thread that wants this core (another process's, OpenMP's) run
                        if parked.load(ordering: .relaxed) || DispatchTime.now().uptimeNanoseconds >= deadline {
                            current = sleep(seen: seen)
                            break
                        }
                    }
                    current = generation.load(ordering: .acquiring)
                }
            }
            seen = current
            // Every started worker counts itself off; only the first `pieces - 1` have a piece.
            if index < pieces, let body { body(index) }
            remaining.subtract(1, ordering: .releasing)
        }
    }

    /// Sleeps until `generation` differs from `seen`; returns the new value.
    private func sleep(seen: Int) -> Int {
        condition.lock()
        sleepers += 1
        var current = generation.load(ordering: .acquiring)
        while current == seen {
            condition.wait()
            current = generation.load(ordering: .acquiring)
        }
        sleepers -= 1
        condition.unlock()
        return current
    }
}
