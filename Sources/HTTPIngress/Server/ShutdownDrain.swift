import Foundation
import GatewayCore
import Synchronization

extension RequestHandler {
    /// The ingress's drain step, between quiescing and stopping its daemons:
    /// waits up to `timeout` until no request is waiting for its commit,
    /// then answers 503 to any still waiting.
    ///
    /// The plain and the TLS daemons share the pending requests, and each
    /// set runs this before it stops: the first call drains them all, later
    /// ones only wait for resumes under way (and for the first call, should
    /// it still run on another thread), so no set stops a daemon that holds
    /// a suspended request.
    func drain(within timeout: Duration) {
        drained.withLock { drained in
            if drained {
                // The first set's answers may still be on their way out
                // through this set's daemons (a loaded machine can take
                // longer than the first set's 1 s): give them as long again.
                pending.waitUntilIdle(deadline: .after(1))
            } else {
                drained = true
                drainPending(within: timeout)
            }
        }
    }

    private func drainPending(within timeout: Duration) {
        let stuck = pending.close(waitingUntil: .after(timeout.timeInterval))
        guard !stuck.isEmpty else { return }
        logger.warning("http requests still waiting for their commit at shutdown; answering 503", metadata: [
            "http.pending": "\(stuck.count)",
        ])
        for rendezvous in stuck {
            deliver(.failure(Self.shuttingDown), to: rendezvous)
        }
        // Give MHD a moment to send those answers before it closes everything.
        pending.waitUntilIdle(deadline: .after(1))
    }
}

extension Duration {
    fileprivate var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
