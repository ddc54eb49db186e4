import GatewayCore
import Logging
import Synchronization

/// The HTTP ingress: one libmicrohttpd daemon per listen address, each with
/// its own epoll thread (or pool), and with `settings.tls` one more TLS
/// daemon per `tls.listen` address. Requests that wait for their commit are
/// suspended in MHD, never blocking a worker.
///
/// Both kinds share one `RequestHandler`, limits and drain. Requests on a
/// plain daemon carry no credentials; on a TLS daemon they carry their
/// `Authorization` header or the connection's client certificate.
///
/// Lifecycle: `start()` once; to shut down, `stopAccepting()` and then
/// `stop()` (which also stops accepting). Dropping the server stops it too.
public final class HTTPServer: Sendable {
    private let handler: RequestHandler
    private let daemons: DaemonSet<HTTPServer>
    /// The TLS daemons, made by `start()` once it has read the TLS files;
    /// nil before, and without `settings.tls`.
    private let secureDaemons = Mutex<DaemonSet<HTTPServer>?>(nil)
    private let settings: HTTPSettings
    private let logger: Logger
    private let drainTimeout: Duration

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
        self.settings = settings
        self.logger = logger
        self.drainTimeout = drainTimeout
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

    /// Reads and checks the TLS files (when `settings.tls` is set), then
    /// binds every `settings.listen` and `tls.listen` address (one MHD daemon
    /// per address). When one fails, the daemons already started are stopped
    /// again and the server cannot be started again.
    public func start() throws(HTTPServerError) {
        guard let tls = settings.tls else {
            try daemons.start()
            return
        }
        let material: TLSMaterial
        do throws(HTTPServerError) {
            // Before anything binds: a bad file leaves no port open.
            material = try TLSMaterial.load(tls)
        } catch {
            daemons.stop()  // a failed start counts
            throw error
        }
        try daemons.start()
        let secure = makeSecureDaemons(tls, material: material)
        secureDaemons.withLock { $0 = secure }
        do throws(HTTPServerError) {
            try secure.start()
        } catch {
            daemons.stop()
            throw error
        }
    }

    private func makeSecureDaemons(_ tls: HTTPTLSSettings, material: TLSMaterial) -> DaemonSet<HTTPServer> {
        let handler = handler
        return DaemonSet(
            listen: tls.listen,
            options: IngressDaemonSettings.secureOptions(settings, material: material),
            callbacks: DaemonCallbacks(access: SecureAccess(handler: handler), completion: handler),
            drain: DaemonDrain(timeout: drainTimeout) { handler.drain(within: $0) },
            logger: logger,
            names: DaemonLogNames(
                subject: "https ingress", key: "https", problem: "libmicrohttpd reported a problem",
                // A failed handshake: a client without TLS, or one that
                // refused the gateway's certificate.
                clientFaults: ["Error: received handshake message out of context"],
                clientFault: "tls handshake failed"
            )
        )
    }

    /// The ports actually bound, in listen order (so port 0 works in tests).
    public var boundPorts: [UInt16] {
        daemons.boundPorts
    }

    /// The TLS ports actually bound, in `tls.listen` order; empty without
    /// `settings.tls` or before `start()`.
    public var boundTLSPorts: [UInt16] {
        secureDaemons.withLock { $0 }?.boundPorts ?? []
    }

    /// Stops accepting new connections (each is closed once accepted). Requests
    /// already waiting for their commit still get answered, and answers from
    /// now on carry `Connection: close`.
    public func stopAccepting() {
        handler.draining.store(true, ordering: .relaxed)
        daemons.stopAccepting()
        secureDaemons.withLock { $0 }?.stopAccepting()
    }

    /// Waits (up to the drain timeout, 5 s) until no request is waiting for
    /// its commit, answers 503 to any still waiting, then stops every daemon:
    /// MHD must not be stopped with suspended connections. Idempotent.
    public func stop() {
        stopAccepting()
        daemons.stop()
        secureDaemons.withLock { $0 }?.stop()
    }
}
