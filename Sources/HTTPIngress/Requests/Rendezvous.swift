internal import CMicroHTTPD
import GatewayCore
import Synchronization

/// An MHD connection handle that crosses threads.
///
/// `@unchecked Sendable`: the pointer is only dereferenced by MHD, and only
/// in the two calls MHD allows from other threads here: `MHD_suspend_connection`
/// on the connection's own worker (inside the access handler) and
/// `MHD_resume_connection`, which MHD documents as safe from any thread.
/// `Rendezvous` makes sure the resume happens once, after the suspend, and
/// `HTTPServer.stop` makes sure it happens before the daemon is freed.
struct ConnectionRef: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Where the MHD worker that suspends a request meets the pipeline's
/// completion that resumes it.
///
/// The completion may arrive on any thread, before the worker has suspended
/// (even before `accept` returns), after, or never. Resuming a connection that
/// was never suspended is undefined behaviour in MHD, so the suspend happens
/// under this lock and the completion only resumes what it saw suspended.
final class Rendezvous: Sendable {
    typealias Outcome = Result<Acceptance, IngressRejection>

    private enum Phase {
        /// `accept` took the request; the worker has not suspended yet.
        case awaiting
        /// The outcome came before the worker suspended: it answers directly.
        case completedEarly(Outcome)
        case suspended
        /// Resumed; the worker collects the outcome when MHD calls it again.
        case resumed(Outcome)
        /// Answered or given up; later outcomes are ignored.
        case finished
    }

    private let phase = Mutex(Phase.awaiting)
    let connection: ConnectionRef

    init(connection: ConnectionRef) {
        self.connection = connection
    }

    /// Called by the worker after `accept` returned. Either suspends the
    /// connection (through `suspend`, under the lock, so no completion can
    /// slip in between) and returns nil, or returns the outcome that arrived
    /// first.
    func suspendUnlessCompleted(_ suspend: (ConnectionRef) -> Void) -> Outcome? {
        phase.withLock { phase in
            switch phase {
            case .awaiting:
                suspend(connection)
                phase = .suspended
                return nil
            case .completedEarly(let outcome):
                phase = .finished
                return outcome
            case .suspended, .resumed, .finished:
                // The worker suspends once per request; nothing else can be here.
                phase = .finished
                return .failure(.internalError(reason: "request state lost"))
            }
        }
    }

    /// Records the outcome. Returns the connection when the caller must
    /// resume it (exactly once per request); nil when the worker will pick the
    /// outcome up itself, or when an outcome was already recorded.
    func complete(_ outcome: Outcome) -> ConnectionRef? {
        phase.withLock { phase in
            switch phase {
            case .awaiting:
                phase = .completedEarly(outcome)
                return nil
            case .suspended:
                phase = .resumed(outcome)
                return connection
            case .completedEarly, .resumed, .finished:
                return nil
            }
        }
    }

    /// Called by the worker when MHD runs the resumed connection again.
    func takeResumedOutcome() -> Outcome? {
        phase.withLock { phase in
            guard case .resumed(let outcome) = phase else { return nil }
            phase = .finished
            return outcome
        }
    }

    /// The worker answered without waiting; ignore whatever comes later.
    func abandon() {
        phase.withLock { $0 = .finished }
    }
}
