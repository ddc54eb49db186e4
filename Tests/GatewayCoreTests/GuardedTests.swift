import Foundation
import Synchronization
import Testing
@testable import GatewayCore

@Suite("Guarded")
struct GuardedTests {
    /// A closure stored as `Guarded`'s state itself would gain a reabstraction
    /// thunk on every access and, after enough accesses, overflow the stack
    /// when called (this happened to the outbox's "new messages" callback:
    /// one more thunk per commit). Kept in a `Callback`, it stays one call deep.
    @Test func aStoredCallbackStaysCallableAfterManyAccesses() {
        let calls = Mutex(0)
        let shared = Guarded<Callback?>(nil)
        shared.withLock { $0 = Callback { calls.withLock { $0 += 1 } } }
        for _ in 0..<300_000 {
            shared.withLock { _ in }
        }
        shared.withLock { $0 }?.run()
        #expect(calls.withLock { $0 } == 1)
    }

    @Test func waitReturnsWhenTheConditionHolds() {
        let shared = Guarded(0)
        let thread = Thread { shared.update { $0 = 42 } }
        thread.start()
        let value = shared.wait(until: { $0 == 42 }) { $0 }
        #expect(value == 42)
    }

    @Test func waitGivesUpAtItsDeadline() {
        let shared = Guarded(false)
        let deadline = Deadline.after(0.05)
        let reached = shared.wait(until: { $0 }, deadline: deadline) { $0 }
        #expect(!reached)
        #expect(deadline.hasPassed)
    }
}

@Suite("WorkerThread")
struct WorkerThreadTests {
    @Test func stopAsksTheBodyToEndAndWaitsForIt() {
        let flag = Guarded(false)
        let ran = Guarded(0)
        let worker = WorkerThread(name: "test-worker")
        worker.start {
            flag.wait(until: { $0 }) { _ in }
            ran.update { $0 += 1 }
        }
        // A second start is ignored: the body runs once.
        worker.start { ran.update { $0 += 100 } }
        #expect(worker.stop(deadline: .after(20)) { flag.update { $0 = true } })
        #expect(ran.withLock { $0 } == 1)
        #expect(!worker.isRunning)
    }

    @Test func aWorkerNeverStartedStopsAtOnceAndCannotStartAfterwards() {
        let worker = WorkerThread(name: "test-worker")
        var asked = false
        #expect(worker.stop { asked = true })
        #expect(asked)
        let ran = Guarded(false)
        worker.start { ran.update { $0 = true } }
        #expect(!worker.isRunning)
        #expect(!ran.withLock { $0 })
    }

    @Test func stopGivesUpAtItsDeadlineWhenTheBodyDoesNotEnd() {
        let release = Guarded(false)
        let worker = WorkerThread(name: "test-stuck")
        worker.start { release.wait(until: { $0 }) { _ in } }
        #expect(!worker.stop(deadline: .after(0.05)) {})
        #expect(worker.isRunning)
        release.update { $0 = true }
        #expect(worker.stop(deadline: .after(20)) {})
    }
}
