internal import CMicroHTTPD
import GatewayCore
import Logging
import Synchronization

/// The libmicrohttpd daemons of one server, one per listen address: started
/// all together or not at all, their bound ports, and stopped once.
///
/// Lifecycle: `start()` once (a failed start counts); `stop()` is
/// idempotent. Dropping the set stops it too, so the callbacks and the log
/// sink, which MHD reaches through unretained pointers, are released only
/// after every daemon has stopped.
final class DaemonSet<Listener: NamedListener>: Sendable {
    /// A started MHD daemon.
    ///
    /// `@unchecked Sendable`: the handle is only used for MHD's daemon-level
    /// calls (bound port, stop), which MHD allows from any thread.
    /// It is used under the state lock while in `state`, and by one thread
    /// only once `stop()` (or a failed `start()`) has taken it out, which
    /// happens once; after `MHD_stop_daemon` the handle is dropped.
    struct Daemon: @unchecked Sendable {
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

    let listen: [ListenAddress]
    let options: DaemonOptions
    let callbacks: DaemonCallbacks
    /// MHD's log sink; it must outlive every daemon.
    let logSink: DaemonLogSink
    private let drain: DaemonDrain?
    private let logger: Logger
    private let names: DaemonLogNames
    private let state = Mutex(State())

    init(
        listen: [ListenAddress], options: DaemonOptions, callbacks: DaemonCallbacks,
        drain: DaemonDrain?, logger: Logger, names: DaemonLogNames
    ) {
        self.listen = listen
        self.options = options
        self.callbacks = callbacks
        self.drain = drain
        self.logger = logger
        self.names = names
        self.logSink = DaemonLogSink(logger: logger, names: names)
    }

    deinit {
        stop()
    }

    /// Binds every `listen` address (one MHD daemon per address). When one
    /// fails, the daemons already started are stopped again and the set
    /// cannot be started again.
    func start() throws(ListenerStartError<Listener>) {
        let failure: (error: ListenerStartError<Listener>, started: [Daemon])? = state.withLock { state in
            guard state.lifecycle == .idle else { return (.alreadyStarted, []) }
            var started: [Daemon] = []
            for address in listen {
                do throws(ListenerStartError<Listener>) {
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
            // The daemons already up may have taken a request in the meantime:
            // they get the drain step (if any), with no time to wait.
            shutDown(failure.started, drainTimeout: .zero)
            throw failure.error
        }
        logger.info("\(names.subject) listening", metadata: [
            "\(names.key).listen": "\(listen.map(\.description).joined(separator: " "))",
            "\(names.key).ports": "\(boundPorts.map(String.init).joined(separator: " "))",
        ])
    }

    /// The ports actually bound, in listen order (so port 0 works in tests).
    var boundPorts: [UInt16] {
        state.withLock { $0.ports }
    }

    /// Closes every connection accepted from now on, for a set with a
    /// drain step; a set without one stops at once.
    func stopAccepting() {
        guard drain != nil else { return }
        callbacks.accepting.store(false, ordering: .relaxed)
    }

    /// Stops every daemon, after the drain step if the set has one.
    /// Idempotent.
    func stop() {
        let daemons: [Daemon] = state.withLock { state in
            let daemons = state.lifecycle == .running ? state.daemons : []
            state.lifecycle = .stopped
            state.daemons = []
            return daemons
        }
        guard !daemons.isEmpty else { return }
        shutDown(daemons, drainTimeout: drain?.timeout ?? .zero)
        logger.info("\(names.subject) stopped")
    }

    /// Stops daemons that no longer appear in `state`: with a drain step,
    /// stops accepting, drains, then stops them.
    private func shutDown(_ daemons: [Daemon], drainTimeout: Duration) {
        if let drain {
            callbacks.accepting.store(false, ordering: .relaxed)
            drain.run(drainTimeout)
        }
        for daemon in daemons {
            MHD_stop_daemon(daemon.pointer)
        }
    }
}

/// A server's wait for its requests in progress: it runs after the daemons
/// stop accepting and before they stop, since MHD must not be stopped while
/// it holds requests the server has yet to answer.
struct DaemonDrain: Sendable {
    /// How long `stop()` lets it wait; after a failed start it gets zero.
    let timeout: Duration
    let run: @Sendable (_ timeout: Duration) -> Void
}
