import Foundation

/// A failure of the test environment or of an expectation the harness checks
/// while waiting (a process that died, a timeout). The description carries
/// whatever output helps to see why: logs are appended by the thrower.
struct HarnessError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// The last `lines` lines of a text, for failure messages.
func tail(_ text: String, lines: Int = 40) -> String {
    let all = text.split(separator: "\n", omittingEmptySubsequences: false)
    return all.suffix(lines).joined(separator: "\n")
}

/// Reads a whole file as text (lossy UTF-8); empty when it does not exist.
func readText(_ path: String) -> String {
    guard let data = FileManager.default.contents(atPath: path) else { return "" }
    return String(decoding: data, as: UTF8.self)
}

/// Polls `probe` until it returns a value or `timeout` passes. Every wait in
/// the harness goes through this, so no test can hang. The readiness waits
/// (broker, gateway, subscriber) allow 60 s: at the start of a run the unit
/// tests' blocking waits can hold Swift's cooperative pool (one thread per
/// core) for many seconds on a loaded 2-core machine, and a poll that is
/// not scheduled still spends its time.
@discardableResult
func eventually<T>(
    timeout: Duration,
    interval: Duration = .milliseconds(50),
    _ what: @autoclosure () -> String,
    _ probe: () async throws -> T?
) async throws -> T {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        if let value = try await probe() { return value }
        if clock.now >= deadline {
            throw HarnessError("timed out after \(timeout) waiting for \(what())")
        }
        try await Task.sleep(for: interval)
    }
}

/// Runs blocking work (a socket loop, a million SQLite inserts) on a thread
/// of its own, off Swift's cooperative pool: that pool has one thread per
/// core, and on a 2-core machine one blocked thread would stall half of every
/// other test running in parallel.
func onOwnThread<T: Sendable>(_ name: String, _ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do {
                continuation.resume(returning: try work())
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.name = name
        thread.start()
    }
}
