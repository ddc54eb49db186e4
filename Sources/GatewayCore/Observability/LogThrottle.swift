import Synchronization

/// Keeps a storm of the same log line down to a few: the first occurrence
/// of a key is logged at once; repeats within `interval` are only counted,
/// and the next one after it is logged with how many were held back. A
/// full disk failing every commit is then a line a minute, not a line per
/// request; the metrics still count every event.
public final class LogThrottle: Sendable {
    /// What to do with one occurrence.
    public enum Verdict: Sendable, Equatable {
        /// Log it; `suppressed` repeats were held back since the last line.
        case log(suppressed: Int)
        /// Count it only.
        case hold
    }

    private struct Entry {
        var lastLogged: Double
        var suppressed: Int
    }

    public let interval: Double
    private let entries = Mutex<[String: Entry]>([:])

    public init(interval: Double = 60) {
        self.interval = interval
    }

    /// `now`: monotonic seconds (`MonotonicClock.now()`).
    public func check(_ key: String, now: Double = MonotonicClock.now()) -> Verdict {
        entries.withLock { entries in
            guard var entry = entries[key], now - entry.lastLogged < interval else {
                let suppressed = entries[key]?.suppressed ?? 0
                entries[key] = Entry(lastLogged: now, suppressed: 0)
                return .log(suppressed: suppressed)
            }
            entry.suppressed += 1
            entries[key] = entry
            return .hold
        }
    }

    /// Repeats held back for `key` and not yet reported (for a closing line).
    public func pending(_ key: String) -> Int {
        entries.withLock { $0[key]?.suppressed ?? 0 }
    }

    /// Forgets `key`, returning the repeats held back (the storm is over).
    @discardableResult
    public func reset(_ key: String) -> Int {
        entries.withLock { $0.removeValue(forKey: key)?.suppressed ?? 0 }
    }
}
