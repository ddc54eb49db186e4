/// The life of one of the gateway's dedicated threads (outbox writer,
/// forwarder, CoAP, MQTT network loop, timeouts, registry watch): started
/// once, asked to stop, waited for. Each worker keeps its own stop flag in
/// its own guarded state, so its wait wakes for it; this owns the rest.
public final class WorkerThread: Sendable {
    private struct Life: Sendable {
        var started = false
        /// Stop was called: a later `start` does nothing.
        var closed = false
        var finished = false
    }

    public let name: String
    private let life = Guarded(Life())
    /// Read by the watchdog while the thread runs (see `Heartbeat`).
    public let heartbeat: Heartbeat

    /// `name` is what `top -H` and `ps -L` show (at most 15 bytes are kept).
    public init(name: String) {
        self.name = name
        heartbeat = Heartbeat(name: name)
    }

    /// Once per turn of the thread's loop.
    public func beat() { heartbeat.beat() }

    /// Runs `wait` (a sleep until there is work) as idle time, which the
    /// watchdog does not count as being stuck.
    public func idle<R>(_ wait: () throws -> R) rethrows -> R { try heartbeat.idle(wait) }

    /// Runs `body` on a new thread; only the first call after `init` does,
    /// and none after `stop`.
    public func start(_ body: @escaping @Sendable () -> Void) {
        let first = life.update { life -> Bool in
            guard !life.started && !life.closed else { return false }
            life.started = true
            return true
        }
        guard first else { return }
        NamedThread.start(name) { [life, heartbeat] in
            LiveWorkers.add(heartbeat)
            body()
            LiveWorkers.remove(heartbeat)
            life.update { $0.finished = true }
        }
    }

    public var isRunning: Bool { life.withLock { $0.started && !$0.finished } }

    /// Calls `request` (which sets the worker's stop flag and wakes it), then
    /// waits until its body has returned or `deadline` passed. True when the
    /// thread is done (or never started).
    @discardableResult
    public func stop(deadline: Deadline? = nil, requesting request: () -> Void) -> Bool {
        life.update { $0.closed = true }
        request()
        return life.wait(until: { !$0.started || $0.finished }, deadline: deadline) { !$0.started || $0.finished }
    }
}
