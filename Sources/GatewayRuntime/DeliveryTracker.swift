import Foundation
import GatewayCore
import GatewayStore

/// Answers `ack: delivered` requests: each waits for its message's PUBACK
/// (or socket write, for QoS 0) or its timeout, whichever comes first. A
/// timed-out message stays queued and is still delivered later.
public final class DeliveryTracker: Sendable {
    public typealias Completion = @Sendable (_ delivered: Bool) -> Void

    struct Waiter: Sendable {
        var deadline: Deadline
        var completion: Completion
    }

    struct State: Sendable {
        var waiters: [MessageKey: Waiter] = [:]
        var stopped = false
        /// Bumped by every registration, so the timeout thread re-reads the earliest deadline.
        var generation = 0
    }

    private let state = Guarded(State())
    private let thread = WorkerThread(name: "delivery-timeouts")

    public init() {}

    /// Registers before the message can be published (see `Outbox.visibleThrough`).
    public func register(_ key: MessageKey, timeout: TimeInterval, completion: @escaping Completion) {
        state.update { state in
            state.waiters[key] = Waiter(deadline: .after(timeout), completion: completion)
            state.generation += 1
        }
        // Only the first call starts it.
        thread.start { [self] in expireLoop() }
    }

    /// The broker took these messages.
    public func delivered(_ keys: [MessageKey]) {
        let done = state.withLock { state -> [Completion] in
            guard !state.waiters.isEmpty else { return [] }
            return keys.compactMap { state.waiters.removeValue(forKey: $0)?.completion }
        }
        for completion in done { completion(true) }
    }

    /// Times out every waiter now (shutdown) and ends the timeout thread.
    public func stop() {
        var all: [Completion] = []
        thread.stop {
            all = state.update { state -> [Completion] in
                state.stopped = true
                defer { state.waiters.removeAll() }
                return state.waiters.values.map(\.completion)
            }
        }
        for completion in all { completion(false) }
    }

    private func expireLoop() {
        while true {
            let (generation, earliest) = state.withLock { ($0.generation, $0.waiters.values.map(\.deadline).min()) }
            let (expired, stop) = thread.idle { state.wait(
                until: { $0.stopped || $0.generation != generation || (earliest?.hasPassed ?? false) },
                deadline: earliest ?? .after(60)
            ) { state -> ([Completion], Bool) in
                let now = Deadline.now()
                let keys = state.waiters.filter { $0.value.deadline <= now }.map(\.key)
                return (keys.compactMap { state.waiters.removeValue(forKey: $0)?.completion }, state.stopped)
            } }
            for completion in expired { completion(false) }
            if stop { return }
        }
    }
}
