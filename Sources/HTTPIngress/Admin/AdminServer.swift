#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CMicroHTTPD
import GatewayCore
import Logging
import Synchronization

/// The admin listener (`/healthz`, `/readyz`, `/metrics`): one small
/// libmicrohttpd daemon per address, each with one internal thread that
/// calls `handler` and answers at once. GET and HEAD only; request bodies
/// are ignored. What the paths mean is up to `handler`.
///
/// Lifecycle: `start()` once, `stop()` (idempotent). Dropping the server
/// stops it too.
public final class AdminServer: Sendable {
    /// A started MHD daemon.
    ///
    /// `@unchecked Sendable`: the handle is only used for MHD's daemon-level
    /// calls (bound port, stop), which MHD allows from any thread. It is read
    /// under the state lock while in `state`, and `MHD_stop_daemon` is called
    /// by the one thread that took it out of `state`, after which it is dropped.
    private struct Daemon: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private enum Lifecycle {
        case idle, running, stopped
    }

    private struct State {
        var lifecycle = Lifecycle.idle
        var daemons: [Daemon] = []
        var ports: [UInt16] = []
    }

    private let listen: [ListenAddress]
    private let logger: Logger
    private let handler: AdminHandler
    private let state = Mutex(State())
    /// MHD's log sink; it must outlive every daemon, so it is freed in deinit.
    private let logSink: AdminLogSink

    /// `handler` runs on the daemons' threads, one request at a time per
    /// address; it must be quick (it holds up the next scrape, not devices).
    public init(
        listen: [ListenAddress],
        logger: Logger,
        handler: @escaping @Sendable (AdminRequest) -> AdminResponse
    ) {
        self.listen = listen
        self.logger = logger
        self.handler = AdminHandler(logger: logger, respond: handler)
        self.logSink = AdminLogSink(handler: self.handler)
    }

    deinit {
        stop()
    }

    /// Binds every address. When one fails, the daemons already started are
    /// stopped again and the server cannot be started again.
    public func start() throws(AdminServerError) {
        let failure: (error: AdminServerError, started: [Daemon])? = state.withLock { state in
            guard state.lifecycle == .idle else { return (.alreadyStarted, []) }
            var started: [Daemon] = []
            for address in listen {
                do throws(AdminServerError) {
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
            for daemon in failure.started { MHD_stop_daemon(daemon.pointer) }
            throw failure.error
        }
        logger.info("admin listener listening", metadata: [
            "admin.listen": "\(listen.map(\.description).joined(separator: " "))",
            "admin.ports": "\(boundPorts.map(String.init).joined(separator: " "))",
        ])
    }

    private func startDaemon(_ address: ListenAddress) throws(AdminServerError) -> Daemon {
        guard var socketAddress = SocketAddress.make(address) else { throw .invalidAddress(address) }
        let context = Unmanaged.passUnretained(handler).toOpaque()
        handler.lastDaemonMessage.withLock { $0 = nil }
        errno = 0
        let daemon = withUnsafePointer(to: &socketAddress) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddr in
                // MHD binds during this call; the address need not outlive it.
                // No completion callback: nothing is allocated per request.
                iotgw_mhd_start(
                    AdminDaemonSettings.flags(for: address), sockaddr,
                    adminAccessTrampoline, context,
                    nil, nil,
                    keepEscapes, nil,
                    logSink.pointer, AdminDaemonSettings.limits
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

    /// Closes the listeners and the open connections; a request being
    /// answered finishes first. Idempotent.
    public func stop() {
        let daemons: [Daemon] = state.withLock { state in
            let daemons = state.lifecycle == .running ? state.daemons : []
            state.lifecycle = .stopped
            state.daemons = []
            return daemons
        }
        guard !daemons.isEmpty else { return }
        for daemon in daemons {
            MHD_stop_daemon(daemon.pointer)
        }
        logger.info("admin listener stopped")
    }
}

/// The C struct MHD's log trampoline reads, at a fixed address for the
/// daemons' lifetime.
///
/// `@unchecked Sendable`: written once in init, then only read by MHD's
/// threads through the pointer; freed in deinit, after `AdminServer.deinit`
/// has stopped every daemon.
private final class AdminLogSink: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<iotgw_mhd_logger>

    init(handler: AdminHandler) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: iotgw_mhd_logger(
            fn: adminLogTrampoline, cls: Unmanaged.passUnretained(handler).toOpaque()
        ))
    }

    deinit {
        pointer.deallocate()
    }
}
