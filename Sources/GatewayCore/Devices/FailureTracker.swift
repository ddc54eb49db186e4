import Synchronization

/// When repeated authentication failures earn a pause (4.29 / 429).
public struct FailureLimit: Sendable, Equatable {
    /// Failures within `window` seconds that start a lockout; 0 turns it off.
    public var failures: Int
    public var window: Double
    /// Seconds a locked-out source or device waits.
    public var lockout: Double

    public init(failures: Int = 10, window: Double = 60, lockout: Double = 60) {
        self.failures = failures
        self.window = window
        self.lockout = lockout
    }
}

/// Counts authentication failures per key (a source address, or a device
/// id) and says which keys are locked out. Bounded: it tracks at most
/// `capacity` keys and forgets the stalest first, so a flood from many
/// addresses costs a fixed amount of memory.
///
/// Called from the CoAP thread and the HTTP workers; one short lock.
public final class FailureTracker: Sendable {
    struct Entry {
        /// Failures in the current window and when that window began.
        var count: Int
        var windowStart: Double
        var lockedUntil: Double
        var lastSeen: Double
    }

    public let limit: FailureLimit
    private let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])
    /// Lets the common case (no failure anywhere) skip the lock.
    private let tracked = Atomic<Int>(0)

    public init(limit: FailureLimit, capacity: Int = 4096) {
        self.limit = limit
        self.capacity = max(1, capacity)
    }

    /// Seconds `key` must still wait, or nil when it may go on.
    public func lockout(_ key: String, now: Double) -> Double? {
        guard limit.failures > 0, tracked.load(ordering: .relaxed) > 0 else { return nil }
        return entries.withLock { table in
            guard let entry = table[key], entry.lockedUntil > now else { return nil }
            return entry.lockedUntil - now
        }
    }

    /// Records one failure; returns the lockout it starts, if this one does.
    @discardableResult
    public func recordFailure(_ key: String, now: Double) -> Double? {
        guard limit.failures > 0 else { return nil }
        return entries.withLock { table in
            var entry = table[key] ?? Entry(count: 0, windowStart: now, lockedUntil: 0, lastSeen: now)
            if now - entry.windowStart > limit.window {
                entry.count = 0
                entry.windowStart = now
            }
            entry.count += 1
            entry.lastSeen = now
            var started: Double?
            if entry.count >= limit.failures, entry.lockedUntil <= now {
                entry.lockedUntil = now + limit.lockout
                entry.count = 0
                entry.windowStart = now
                started = limit.lockout
            }
            if table[key] == nil, table.count >= capacity {
                evict(from: &table, now: now)
            }
            table[key] = entry
            tracked.store(table.count, ordering: .relaxed)
            return started
        }
    }

    /// Nothing has failed lately (or lockouts are off): callers can skip
    /// building keys. One atomic load.
    public var isIdle: Bool { limit.failures == 0 || tracked.load(ordering: .relaxed) == 0 }

    /// Keys currently tracked (for tests and metrics).
    public var count: Int { entries.withLock { $0.count } }

    /// Drops what no longer matters; if everything still does, the entry
    /// seen longest ago. Runs only when the table is full.
    private func evict(from table: inout [String: Entry], now: Double) {
        let before = table.count
        table = table.filter { $0.value.lockedUntil > now || now - $0.value.windowStart <= limit.window }
        if table.count < before { return }
        if let stalest = table.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key {
            table.removeValue(forKey: stalest)
        }
    }
}
