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
        let reached = shared.wait(until: { $0 }, deadline: Date().addingTimeInterval(0.05)) { $0 }
        #expect(!reached)
    }
}
