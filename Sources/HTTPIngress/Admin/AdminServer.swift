import GatewayCore
import Logging

/// The admin listener (`/healthz`, `/readyz`, `/metrics`): one small
/// libmicrohttpd daemon per address, each with one internal thread that
/// calls `handler` and answers at once. GET and HEAD only; request bodies
/// are ignored. What the paths mean is up to `handler`.
///
/// Lifecycle: `start()` once, `stop()` (idempotent). Dropping the server
/// stops it too.
public final class AdminServer: Sendable {
    private let daemons: DaemonSet<AdminServer>

    /// `handler` runs on the daemons' threads, one request at a time per
    /// address; it must be quick (it holds up the next scrape, not devices).
    public init(
        listen: [ListenAddress],
        logger: Logger,
        handler: @escaping @Sendable (AdminRequest) -> AdminResponse
    ) {
        self.daemons = DaemonSet(
            listen: listen,
            options: AdminDaemonSettings.options,
            // Nothing is allocated per request, so no completion notice.
            callbacks: DaemonCallbacks(access: AdminHandler(logger: logger, respond: handler), completion: nil),
            // Nothing waits: closing the listeners and connections is enough.
            drain: nil,
            logger: logger,
            names: DaemonLogNames(
                subject: "admin listener", key: "admin",
                problem: "libmicrohttpd reported a problem on the admin listener"
            )
        )
    }

    deinit {
        stop()
    }

    /// Binds every address. When one fails, the daemons already started are
    /// stopped again and the server cannot be started again.
    public func start() throws(AdminServerError) {
        try daemons.start()
    }

    /// The ports actually bound, in listen order (so port 0 works in tests).
    public var boundPorts: [UInt16] {
        daemons.boundPorts
    }

    /// Closes the listeners and the open connections; a request being
    /// answered finishes first. Idempotent.
    public func stop() {
        daemons.stop()
    }
}
