/// Keeps one connection's publishes within a message rate and a byte rate
/// over every sliding window of `window` seconds, as AWS IoT Core counts them
/// (it silently discards what exceeds its per-connection quotas). The window
/// is a little longer than a second so that jitter on the way to the broker
/// cannot squeeze more than the quota into one of its seconds, and publishes
/// are paced evenly (one every `window / rate`) rather than sent in bursts: a
/// burst delayed on the way would arrive on top of the next one.
public struct PublishLimiter: Sendable {
    public let messagesPerWindow: Int?
    public let bytesPerWindow: Int?
    public let window: Double

    /// Send times (and sizes) of the publishes still inside the window, oldest first.
    private var times: [Double] = []
    private var sizes: [Int] = []
    private var head = 0
    private var bytesInWindow = 0

    public init(publishRate: Double?, byteRate: Int?, window: Double = 1.05) {
        self.messagesPerWindow = publishRate.map { max(1, Int($0.rounded(.down))) }
        self.bytesPerWindow = byteRate
        self.window = window
    }

    public var isUnlimited: Bool { messagesPerWindow == nil && bytesPerWindow == nil }

    /// The even spacing between publishes under a message rate.
    public var interval: Double? { messagesPerWindow.map { window / Double($0) } }

    /// Seconds to wait before a publish of `bytes` may go out; 0 means now.
    public mutating func delay(bytes: Int, now: Double) -> Double {
        guard !isUnlimited else { return 0 }
        expire(now: now)
        var wait = 0.0
        if let interval, let last = times.last {
            wait = max(wait, last + interval - now)
        }
        if let limit = messagesPerWindow, times.count - head >= limit {
            // The oldest of the last `limit` publishes must leave the window.
            wait = max(wait, times[times.count - limit] + window - now)
        }
        if let limit = bytesPerWindow, bytesInWindow + bytes > limit, head < times.count {
            // Wait until enough old bytes leave; a single message larger than
            // the whole budget goes out alone once the window is empty.
            var freed = bytesInWindow
            var index = head
            while index < times.count && freed + bytes > limit {
                freed -= sizes[index]
                index += 1
            }
            wait = max(wait, times[index - 1] + window - now)
        }
        return max(0, wait)
    }

    /// Records a publish that went out.
    public mutating func record(bytes: Int, now: Double) {
        guard !isUnlimited else { return }
        times.append(now)
        sizes.append(bytes)
        bytesInWindow += bytes
    }

    private mutating func expire(now: Double) {
        while head < times.count && times[head] + window <= now {
            bytesInWindow -= sizes[head]
            head += 1
        }
        if head > 256 && head * 2 > times.count {
            times.removeFirst(head)
            sizes.removeFirst(head)
            head = 0
        }
    }
}

/// A stable 64-bit hash (FNV-1a) of a shard key: the same key lands on the
/// same connection in every run, which Swift's seeded `Hasher` does not give.
public enum ShardHash {
    public static func of(_ key: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// The connection (0-based) for `hash` among `count`. Computed on the
    /// hash as SQLite stores it (a signed 64-bit integer) and the same way
    /// SQL computes it when the outbox re-shards for a new count.
    public static func shard(_ hash: UInt64, of count: Int) -> Int {
        let n = Int64(max(1, count))
        return Int(((Int64(bitPattern: hash) % n) + n) % n)
    }
}
