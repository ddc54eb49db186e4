import Foundation

/// Seconds on a clock that never jumps (CLOCK_MONOTONIC), for timeouts and
/// backoff. An NTP step on an edge box moves `Date()`, never this.
public enum MonotonicClock {
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

/// A moment on `MonotonicClock` by which something must happen. Every wait
/// and timeout in the gateway is one of these; `Date` is only for
/// timestamps that leave the process.
public struct Deadline: Sendable, Comparable, Hashable {
    /// `MonotonicClock.now()` seconds.
    public let seconds: Double

    public init(seconds: Double) {
        self.seconds = seconds
    }

    /// `interval` seconds from now.
    public static func after(_ interval: Double) -> Deadline {
        Deadline(seconds: MonotonicClock.now() + interval)
    }

    public static func now() -> Deadline {
        Deadline(seconds: MonotonicClock.now())
    }

    public var hasPassed: Bool { MonotonicClock.now() >= seconds }

    /// Seconds left, never negative.
    public var remaining: Double { max(0, seconds - MonotonicClock.now()) }

    public static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.seconds < rhs.seconds }

    public static func + (lhs: Deadline, rhs: Double) -> Deadline { Deadline(seconds: lhs.seconds + rhs) }
}
