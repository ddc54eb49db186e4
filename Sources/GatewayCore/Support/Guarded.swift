import Foundation

/// State shared between threads, behind a lock with a condition variable, for
/// the dedicated threads (outbox writer, forwarder) that sleep until there is
/// work. `Synchronization.Mutex` has no condition variable, hence this.
///
/// Never make `State` a function type (or an optional one): passing it
/// `inout` through this generic type re-abstracts the closure on every call,
/// wrapping it in one more thunk each time until calling it recurses through
/// thousands of frames. Keep closures inside a struct such as `Callback`.
///
/// `@unchecked Sendable`: `state` is only read or written while `condition` is
/// locked, in `withLock`, `update`, `updateWakingIf` and `wait`, so no two
/// threads touch it at once.
public final class Guarded<State>: @unchecked Sendable {
    private let condition = MonotonicCondition()
    private var state: State

    public init(_ state: State) {
        self.state = state
    }

    public func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        condition.lock()
        defer { condition.unlock() }
        return try body(&state)
    }

    /// Changes the state and wakes every waiter.
    public func update<R>(_ body: (inout State) throws -> R) rethrows -> R {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return try body(&state)
    }

    /// Changes the state and wakes the waiters only when `body` returns
    /// true: for a change a waiter may not need yet, which then costs no
    /// wake-up (a futex call and a context switch) at all.
    public func updateWakingIf(_ body: (inout State) throws -> Bool) rethrows {
        condition.lock()
        defer { condition.unlock() }
        if try body(&state) { condition.broadcast() }
    }

    /// Sleeps until `ready` holds (or `deadline` passes), then runs `body`
    /// under the same lock.
    public func wait<R>(
        until ready: (State) -> Bool,
        deadline: Deadline? = nil,
        then body: (inout State) throws -> R
    ) rethrows -> R {
        condition.lock()
        defer { condition.unlock() }
        while !ready(state) {
            if let deadline {
                if !condition.wait(until: deadline) && deadline.hasPassed { break }
            } else {
                condition.wait()
            }
        }
        return try body(&state)
    }
}

/// A closure kept in shared state (see the note on `Guarded`).
public struct Callback: Sendable {
    public let run: @Sendable () -> Void

    public init(run: @escaping @Sendable () -> Void) {
        self.run = run
    }
}
