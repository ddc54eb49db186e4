import Foundation

/// When to try the next CONNECT: exponential backoff with full jitter (the
/// AWS SDKs' policy), from `initial` up to `maximum` seconds, never sooner
/// than `minimumInterval` (AWS IoT Core allows one CONNECT per second per
/// client ID), and back to the start once a connection has held for
/// `stableAfter` seconds.
public struct ReconnectBackoff: Sendable {
    public var initial: Double
    public var maximum: Double
    public var stableAfter: Double
    public var minimumInterval: Double
    public private(set) var failures = 0
    private var connectedAt: Double?

    public init(initial: Double = 1, maximum: Double = 120, stableAfter: Double = 30, minimumInterval: Double = 1) {
        self.initial = initial
        self.maximum = maximum
        self.stableAfter = stableAfter
        self.minimumInterval = minimumInterval
    }

    /// The upper bound of the next delay, before jitter.
    public var ceiling: Double {
        min(maximum, initial * pow(2, Double(min(failures, 30))))
    }

    /// Seconds to wait before the next attempt; `random` draws from `0...bound`.
    public mutating func nextDelay(random: (Double) -> Double = { Double.random(in: 0...$0) }) -> Double {
        let bound = ceiling
        failures += 1
        return max(minimumInterval, random(bound))
    }

    public mutating func didConnect(at time: Double) {
        connectedAt = time
    }

    public mutating func didDisconnect(at time: Double) {
        if let connectedAt, time - connectedAt >= stableAfter { failures = 0 }
        connectedAt = nil
    }
}
