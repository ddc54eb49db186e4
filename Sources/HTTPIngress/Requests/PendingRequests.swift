import Foundation
import GatewayCore

/// Requests the pipeline has taken and not yet seen answered, so `stop()`
/// can wait for them: MHD must not be stopped while a connection is
/// suspended, nor while another thread is inside `MHD_resume_connection`.
///
/// A request is registered when `accept` returns without throwing and
/// removed when MHD reports it completed (response sent, or connection gone),
/// which is after any resume of it has been processed.
final class PendingRequests: Sendable {
    private struct State {
        var live: [ObjectIdentifier: Rendezvous] = [:]
        /// Completions between deciding to resume and `MHD_resume_connection` returning.
        var resuming = 0
        /// Set by `stop()`: no more requests may wait for a commit.
        var closed = false

        var idle: Bool { live.isEmpty && resuming == 0 }
    }

    private let state = Guarded(State())

    /// False once `stop()` has closed the registry; the caller must then
    /// answer without suspending.
    func register(_ rendezvous: Rendezvous) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.live[ObjectIdentifier(rendezvous)] = rendezvous
            return true
        }
    }

    func remove(_ rendezvous: Rendezvous) {
        state.update { _ = $0.live.removeValue(forKey: ObjectIdentifier(rendezvous)) }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    var count: Int { state.withLock { $0.live.count } }

    /// Brackets a call to `MHD_resume_connection` from outside MHD's threads.
    func withResume(_ body: () -> Void) {
        state.withLock { $0.resuming += 1 }
        body()
        state.update { $0.resuming -= 1 }
    }

    /// Waits until nothing is pending or `deadline` passes, then closes the
    /// registry (atomically, so nothing new can start waiting in between) and
    /// returns what is still pending.
    func close(waitingUntil deadline: Deadline) -> [Rendezvous] {
        state.wait(until: \.idle, deadline: deadline) { state in
            state.closed = true
            return Array(state.live.values)
        }
    }

    /// Waits until nothing is pending or `deadline` passes. Resumes already
    /// under way are always waited for: they take microseconds, and the
    /// daemon must outlive them.
    @discardableResult
    func waitUntilIdle(deadline: Deadline) -> Bool {
        let idle = state.wait(until: \.idle, deadline: deadline) { $0.idle }
        if !idle {
            state.wait(until: { $0.resuming == 0 }) { _ in }
        }
        return idle
    }
}
