#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CMicroHTTPD
import Foundation
import GatewayCore
import Logging
import Synchronization

/// The HTTP ingress: one libmicrohttpd daemon per listen address, each with
/// its own epoll thread (or pool). Requests that wait for their commit are
/// suspended in MHD, never blocking a worker.
///
/// Lifecycle: `start()` once; to shut down, `stopAccepting()` and then
/// `stop()` (which also stops accepting). Dropping the server stops it too.
public final class HTTPServer: Sendable {
    /// A started MHD daemon.
    ///
    /// `@unchecked Sendable`: the handle is only used for MHD's daemon-level
    /// calls (bound port, quiesce, stop), which MHD allows from any thread.
    /// It is used under the state lock while in `state`, and by one thread
    /// only once `stop()` (or a failed `start()`) has taken it out, which
    /// happens once; after `MHD_stop_daemon` the handle is dropped.
    private struct Daemon: @unchecked Sendable {
        let pointer: OpaquePointer
        /// The listen socket MHD hands back on quiesce; ours to close, but
        /// only after `MHD_stop_daemon`.
        var quiescedSocket: Int32?
    }

    private enum Lifecycle {
        case idle, running, stopped
    }

    private struct State {
        var lifecycle = Lifecycle.idle
        var daemons: [Daemon] = []
        var ports: [UInt16] = []
    }

    private let settings: HTTPSettings
    private let handler: RequestHandler
    private let logger: Logger
    /// How long `stop()` waits for suspended requests before answering 503.
    private let drainTimeout: Duration
    private let state = Mutex(State())
    /// MHD's log sink; it must outlive every daemon, so it is freed in deinit.
    private let logSink: LogSink

    public convenience init(
        settings: HTTPSettings, pipeline: any IngressPipeline, logger: Logger, observer: any GatewayObserver = NoObserver()
    ) {
        self.init(settings: settings, pipeline: pipeline, logger: logger, observer: observer, drainTimeout: .seconds(5))
    }

    init(
        settings: HTTPSettings, pipeline: any IngressPipeline, logger: Logger,
        observer: any GatewayObserver = NoObserver(), drainTimeout: Duration
    ) {
        self.settings = settings
        self.logger = logger
        self.drainTimeout = drainTimeout
        self.handler = RequestHandler(pipeline: pipeline, logger: logger, observer: observer, maxBody: settings.maxBody)
        self.logSink = LogSink(handler: handler)
    }

    deinit {
        stop()
    }

    /// Binds every `settings.listen` address (one MHD daemon per address).
    /// When one fails, the daemons already started are stopped again and the
    /// server cannot be started again.
    public func start() throws(HTTPServerError) {
        let failure: (error: HTTPServerError, started: [Daemon])? = state.withLock { state in
            guard state.lifecycle == .idle else { return (.alreadyStarted, []) }
            var started: [Daemon] = []
            for address in settings.listen {
                do throws(HTTPServerError) {
                    started.append(try startDaemon(address))
                } catch {
                    state.lifecycle = .stopped
                    return (error, started)
                }
            }
            state.daemons = started
            state.ports = started.map { iotgw_mhd_bound_port($0.pointer) }
            state.lifecycle = .running
            return nil
        }
        if let failure {
            // The daemons already up may have taken a request in the meantime.
            shutDown(failure.started, drainTimeout: .zero)
            throw failure.error
        }
        logger.info("http ingress listening", metadata: [
            "http.listen": "\(settings.listen.map(\.description).joined(separator: " "))",
            "http.ports": "\(boundPorts.map(String.init).joined(separator: " "))",
        ])
    }

    private func startDaemon(_ address: ListenAddress) throws(HTTPServerError) -> Daemon {
        guard var socketAddress = SocketAddress.make(address) else { throw .invalidAddress(address) }
        let context = Unmanaged.passUnretained(handler).toOpaque()
        handler.lastDaemonMessage.withLock { $0 = nil }
        errno = 0
        let daemon = withUnsafePointer(to: &socketAddress) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddr in
                // MHD binds during this call; the address need not outlive it.
                iotgw_mhd_start(
                    DaemonSettings.flags(for: address), sockaddr,
                    accessTrampoline, context,
                    completedTrampoline, context,
                    keepEscapes, nil,
                    logSink.pointer, DaemonSettings.limits(settings)
                )
            }
        }
        let code = errno
        guard let daemon else {
            // MHD leaves bind's errno in place (it only closes and frees after).
            let reason = code != 0
                ? String(cString: strerror(code))
                : handler.lastDaemonMessage.withLock { $0 } ?? "libmicrohttpd could not start a daemon"
            throw .bindFailed(address: address, reason: reason)
        }
        return Daemon(pointer: daemon)
    }

    /// The ports actually bound, in listen order (so port 0 works in tests).
    public var boundPorts: [UInt16] {
        state.withLock { $0.ports }
    }

    /// Stops accepting new connections (`MHD_quiesce_daemon`). Requests
    /// already waiting for their commit still get answered, and answers from
    /// now on carry `Connection: close`.
    public func stopAccepting() {
        handler.draining.store(true, ordering: .relaxed)
        state.withLock { state in
            guard state.lifecycle == .running else { return }
            for index in state.daemons.indices where state.daemons[index].quiescedSocket == nil {
                let socket = MHD_quiesce_daemon(state.daemons[index].pointer)
                if socket >= 0 { state.daemons[index].quiescedSocket = socket }
            }
        }
    }

    /// Waits (up to the drain timeout, 5 s) until no request is waiting for
    /// its commit, answers 503 to any still waiting, then stops every daemon:
    /// MHD must not be stopped with suspended connections. Idempotent.
    public func stop() {
        stopAccepting()
        let daemons: [Daemon] = state.withLock { state in
            let daemons = state.lifecycle == .running ? state.daemons : []
            state.lifecycle = .stopped
            state.daemons = []
            return daemons
        }
        guard !daemons.isEmpty else { return }
        shutDown(daemons, drainTimeout: drainTimeout)
        logger.info("http ingress stopped")
    }

    /// Quiesces, drains and stops daemons that no longer appear in `state`.
    private func shutDown(_ daemons: [Daemon], drainTimeout: Duration) {
        var daemons = daemons
        for index in daemons.indices where daemons[index].quiescedSocket == nil {
            let socket = MHD_quiesce_daemon(daemons[index].pointer)
            if socket >= 0 { daemons[index].quiescedSocket = socket }
        }
        let stuck = handler.pending.close(waitingUntil: Date() + drainTimeout.timeInterval)
        if !stuck.isEmpty {
            logger.warning("http requests still waiting for their commit at shutdown; answering 503", metadata: [
                "http.pending": "\(stuck.count)",
            ])
            for rendezvous in stuck {
                handler.deliver(.failure(RequestHandler.shuttingDown), to: rendezvous)
            }
            // Give MHD a moment to send those answers before it closes everything.
            handler.pending.waitUntilIdle(deadline: Date() + 1)
        }
        for daemon in daemons {
            MHD_stop_daemon(daemon.pointer)
            if let socket = daemon.quiescedSocket { close(socket) }
        }
    }
}

/// The C struct MHD's log trampoline reads, at a fixed address for the
/// daemons' lifetime.
///
/// `@unchecked Sendable`: written once in init, then only read by MHD's
/// threads through the pointer; freed in deinit, after `HTTPServer.deinit`
/// has stopped every daemon.
private final class LogSink: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<iotgw_mhd_logger>

    init(handler: RequestHandler) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: iotgw_mhd_logger(
            fn: logTrampoline, cls: Unmanaged.passUnretained(handler).toOpaque()
        ))
    }

    deinit {
        pointer.deallocate()
    }
}

extension Duration {
    fileprivate var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
