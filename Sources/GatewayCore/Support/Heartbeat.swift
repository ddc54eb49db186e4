import Synchronization

/// How a dedicated thread shows it is alive, for the systemd watchdog: it
/// beats once per turn of its loop and is marked idle while it sleeps
/// waiting for work. A thread that is neither idle nor beating is stuck in
/// one turn (a hung disk under the writer, a call that never returns).
///
/// Atomics rather than a lock: the writer and forwarder beat on every turn,
/// and the watchdog only reads.
public final class Heartbeat: Sendable {
    public let name: String
    private let beats = Atomic<UInt64>(0)
    private let idleDepth = Atomic<Int>(0)

    public init(name: String) {
        self.name = name
    }

    public func beat() {
        beats.wrappingAdd(1, ordering: .relaxed)
    }

    /// Runs `wait` (a sleep until there is work) as idle time.
    public func idle<R>(_ wait: () throws -> R) rethrows -> R {
        idleDepth.wrappingAdd(1, ordering: .relaxed)
        defer {
            idleDepth.wrappingSubtract(1, ordering: .relaxed)
            beat()
        }
        return try wait()
    }

    public struct Reading: Sendable, Equatable {
        public var beats: UInt64
        public var idle: Bool
    }

    public var reading: Reading {
        Reading(beats: beats.load(ordering: .relaxed), idle: idleDepth.load(ordering: .relaxed) > 0)
    }
}

/// The heartbeats of the worker threads running now, for the watchdog.
/// Process-wide because the threads are made deep inside the adapters
/// (libcoap's loop, each libmosquitto connection), one registry per process
/// is what the watchdog needs, and a thread's entry lives exactly as long
/// as the thread.
public enum LiveWorkers {
    private static let live = Guarded<[ObjectIdentifier: Heartbeat]>([:])

    static func add(_ heartbeat: Heartbeat) {
        live.withLock { $0[ObjectIdentifier(heartbeat)] = heartbeat }
    }

    static func remove(_ heartbeat: Heartbeat) {
        _ = live.withLock { $0.removeValue(forKey: ObjectIdentifier(heartbeat)) }
    }

    public static var all: [Heartbeat] {
        live.withLock { Array($0.values) }
    }
}
