import Foundation

/// Seconds on a clock that never jumps (CLOCK_MONOTONIC), for timeouts and backoff.
public enum MonotonicClock {
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
