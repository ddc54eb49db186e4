import Foundation
import GatewayCore
import Logging

/// Tells systemd how the gateway is: READY=1 once it serves, STATUS= with
/// the outbox depth and upstream state every few seconds, WATCHDOG=1 only
/// while every worker thread is idle or making progress, STOPPING=1 when it
/// stops. Does nothing when the gateway was not started as `Type=notify`.
final class ServiceSupervisor: Sendable {
    private struct Control: Sendable {
        var stopRequested = false
    }

    private let notifier: SystemdNotifier?
    private let watchdog: Double?
    private let status: @Sendable () -> String
    private let logger: Logger
    private let control = Guarded(Control())
    private let thread = WorkerThread(name: "systemd-notify")

    /// How often STATUS= is refreshed.
    static let statusInterval = 5.0
    /// A thread busy this long in one turn of its loop is stuck, however
    /// short the watchdog: a slow fsync on an SD card can take seconds.
    static let shortestStall = 5.0

    init(
        notifier: SystemdNotifier? = SystemdNotifier(), watchdog: Double? = SystemdWatchdog.interval(),
        logger: Logger, status: @escaping @Sendable () -> String
    ) {
        self.notifier = notifier
        self.watchdog = notifier == nil ? nil : watchdog
        self.logger = logger
        self.status = status
    }

    /// The gateway serves: listeners bound, outbox open.
    func ready() {
        guard let notifier else { return }
        notifier.send(["READY=1", "STATUS=\(status())"])
        if let watchdog {
            logger.info("systemd watchdog armed", metadata: ["watchdog.interval": "\(watchdog)s"])
        }
        thread.start { [self] in run() }
    }

    func reloading() { notifier?.send(["RELOADING=1", "STATUS=reloading mappings and devices"]) }

    func reloaded(_ outcome: String) { notifier?.send(["READY=1", "STATUS=\(outcome); \(status())"]) }

    func stopping() {
        notifier?.send(["STOPPING=1", "STATUS=stopping: finishing commits, waiting briefly for PUBACKs"])
        thread.stop { control.update { $0.stopRequested = true } }
    }

    private func run() {
        guard let notifier else { return }
        let tick = min(Self.statusInterval, watchdog.map { $0 / 2 } ?? Self.statusInterval)
        var stalls = StallDetector(after: max(Self.shortestStall, tick))
        var lastStatus = ""
        var nextStatus = MonotonicClock.now()
        while true {
            thread.beat()
            let stopping = thread.idle {
                control.wait(until: { $0.stopRequested }, deadline: .after(tick)) { $0.stopRequested }
            }
            if stopping { return }
            let now = MonotonicClock.now()
            var fields: [String] = []
            if watchdog != nil {
                let stuck = stalls.check(LiveWorkers.all, now: now)
                switch stuck {
                case .healthy:
                    fields.append("WATCHDOG=1")
                case .recovered:
                    logger.notice("worker threads progress again; watchdog pings resume")
                    fields.append("WATCHDOG=1")
                case .newlyStuck(let names, let seconds):
                    logger.error("worker thread stuck; withholding watchdog pings so systemd restarts the gateway", metadata: [
                        "thread": "\(names.joined(separator: ","))",
                        "stuck_for": "\(Int(seconds))s",
                    ])
                case .stillStuck:
                    break
                }
            }
            if now >= nextStatus {
                let text = status()
                if text != lastStatus {
                    fields.append("STATUS=\(text)")
                    lastStatus = text
                }
                nextStatus = now + Self.statusInterval
            }
            if !fields.isEmpty { notifier.send(fields) }
        }
    }
}

/// Finds worker threads that are neither idle nor beating.
struct StallDetector {
    enum Verdict: Equatable {
        case healthy
        case newlyStuck([String], seconds: Double)
        case stillStuck
        case recovered
    }

    /// Seconds without a beat, outside an idle wait, that count as stuck.
    let after: Double
    private var seen: [ObjectIdentifier: (reading: Heartbeat.Reading, since: Double)] = [:]
    private var stuck = false

    init(after: Double) {
        self.after = after
    }

    mutating func check(_ heartbeats: [Heartbeat], now: Double) -> Verdict {
        var next: [ObjectIdentifier: (reading: Heartbeat.Reading, since: Double)] = [:]
        var stuckNames: [String] = []
        var longest = 0.0
        for heartbeat in heartbeats {
            let key = ObjectIdentifier(heartbeat)
            let reading = heartbeat.reading
            var since = now
            if let previous = seen[key], previous.reading == reading { since = previous.since }
            next[key] = (reading, since)
            if !reading.idle && now - since >= after {
                stuckNames.append(heartbeat.name)
                longest = max(longest, now - since)
            }
        }
        seen = next
        let wasStuck = stuck
        stuck = !stuckNames.isEmpty
        switch (wasStuck, stuck) {
        case (false, false): return .healthy
        case (false, true): return .newlyStuck(stuckNames.sorted(), seconds: longest)
        case (true, true): return .stillStuck
        case (true, false): return .recovered
        }
    }
}
