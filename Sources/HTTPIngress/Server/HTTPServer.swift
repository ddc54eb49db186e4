import GatewayCore
import Logging

/// The HTTP ingress: one libmicrohttpd daemon per listen address, each with
/// its own epoll thread (or pool). Requests that wait for their commit are
/// suspended in MHD, never blocking a worker.
///
/// Lifecycle: `start()` once; to shut down, `stopAccepting()` and then
/// `stop()` (which also stops accepting). Dropping the server stops it too.
public final class HTTPServer: Sendable {
    private let handler: RequestHandler
    private let daemons: DaemonSet<HTTPServer>

    public convenience init(
        settings: HTTPSettings, pipeline: any IngressPipeline, logger: Logger, observer: any GatewayObserver = NoObserver()
    ) {
        self.init(settings: settings, pipeline: pipeline, logger: logger, observer: observer, drainTimeout: .seconds(5))
    }

    /// `drainTimeout`: how long `stop()` waits for suspended requests before
    /// answering 503.
    init(
        settings: HTTPSettings, pipeline: any IngressPipeline, logger: Logger,
        observer: any GatewayObserver = NoObserver(), drainTimeout: Duration
    ) {
        let handler = RequestHandler(pipeline: pipeline, logger: logger, observer: observer, maxBody: settings.maxBody)
        self.handler = handler
        self.daemons = DaemonSet(
            listen: settings.listen,
            options: IngressDaemonSettings.options(settings),
            callbacks: DaemonCallbacks(access: handler, completion: handler),
            drain: DaemonDrain(timeout: drainTimeout) { handler.drain(within: $0) },
            logger: logger,
            names: DaemonLogNames(subject: "http ingress", key: "http", problem: "libmicrohttpd reported a problem")
        )
    }

    deinit {
        stop()
    }

    /// Binds every `settings.listen` address (one MHD daemon per address).
    /// When one fails, the daemons already started are stopped again and the
    /// server cannot be started again.
    public func start() throws(HTTPServerError) {
        try daemons.start()
    }

    /// The ports actually bound, in listen order (so port 0 works in tests).
    public var boundPorts: [UInt16] {
        daemons.boundPorts
    }

    /// Stops accepting new connections (each is closed once accepted). Requests
    /// already waiting for their commit still get answered, and answers from
    /// now on carry `Connection: close`.
    public func stopAccepting() {
        handler.draining.store(true, ordering: .relaxed)
        daemons.stopAccepting()
    }

    /// Waits (up to the drain timeout, 5 s) until no request is waiting for
    /// its commit, answers 503 to any still waiting, then stops every daemon:
    /// MHD must not be stopped with suspended connections. Idempotent.
    public func stop() {
        stopAccepting()
        daemons.stop()
    }
}
