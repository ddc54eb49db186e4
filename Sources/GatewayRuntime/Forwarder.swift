import Foundation
import GatewayCore
import GatewayStore
import Logging

/// Drains the outbox into the upstream connection on a dedicated thread.
///
/// It keeps at most `window` publishes in flight, maps each MQTT message ID to
/// its outbox row, and hands a row back for deletion only when the broker
/// acknowledged it (QoS 1) or it was written to the socket (QoS 0). QoS 1
/// messages in flight at a disconnect stay with the client, which resends them
/// (DUP) after reconnecting; QoS 0 messages in flight are dropped then, as QoS
/// 0 allows. After a restart, delivery starts again from the oldest row.
public final class Forwarder: Sendable {
    struct Signals: Sendable {
        var events: [UpstreamEvent] = []
        var newData = false
        var stopRequested = false
        var drainDeadline: Date?
        var finished = false
    }

    private let outbox: Outbox
    private let writer: OutboxWriter
    private let client: UpstreamClient
    private let window: Int
    private let logger: Logger
    private let signals = Guarded(Signals())

    public init(outbox: Outbox, writer: OutboxWriter, client: UpstreamClient, window: Int, logger: Logger) {
        self.outbox = outbox
        self.writer = writer
        self.client = client
        self.window = window
        self.logger = logger
    }

    public func start() {
        client.start { [signals] event in
            signals.update { $0.events.append(event) }
        }
        let thread = Thread { [self] in run() }
        thread.name = "forwarder"
        thread.start()
    }

    /// New rows were committed.
    public func notifyNewData() {
        signals.update { $0.newData = true }
    }

    /// Stops publishing new rows, waits up to `drainTimeout` for the
    /// acknowledgements of those in flight, then disconnects.
    public func stop(drainTimeout: TimeInterval) {
        signals.update {
            $0.stopRequested = true
            $0.drainDeadline = Date().addingTimeInterval(drainTimeout)
        }
        signals.wait(until: { $0.finished }) { _ in }
        client.stop()
    }

    private struct InFlight {
        var row: Int64
        var size: Int
        var qos: QoS
    }

    private func run() {
        var connected = false
        var inFlight: [Int32: InFlight] = [:]
        var cursor: Int64 = 0
        var maybeMore = true

        while true {
            let canPublish = connected && inFlight.count < window && maybeMore
            let wake = signals.wait(
                until: { !$0.events.isEmpty || $0.newData || $0.stopRequested || canPublish },
                deadline: nil
            ) { signals -> (events: [UpstreamEvent], newData: Bool, stopping: Bool, deadline: Date?) in
                defer {
                    signals.events.removeAll(keepingCapacity: true)
                    signals.newData = false
                }
                return (signals.events, signals.newData, signals.stopRequested, signals.drainDeadline)
            }
            if wake.newData { maybeMore = true }

            var delivered: [(id: Int64, size: Int)] = []
            for event in wake.events {
                switch event {
                case .connected:
                    connected = true
                    maybeMore = true
                case .disconnected:
                    connected = false
                    // libmosquitto drops unsent QoS 0 packets on disconnect.
                    for (messageID, entry) in inFlight where entry.qos == .atMostOnce {
                        inFlight.removeValue(forKey: messageID)
                        delivered.append((entry.row, entry.size))
                    }
                case .published(let messageID):
                    if let entry = inFlight.removeValue(forKey: messageID) {
                        delivered.append((entry.row, entry.size))
                    }
                }
            }
            writer.acknowledge(delivered)

            if wake.stopping {
                if inFlight.isEmpty || !connected || Date() >= (wake.deadline ?? .distantPast) { break }
                // Wait for acknowledgements without publishing more.
                signals.wait(until: { !$0.events.isEmpty }, deadline: wake.deadline) { _ in }
                continue
            }

            guard connected, inFlight.count < window, maybeMore else { continue }
            let limit = window - inFlight.count
            let rows: [StoredMessage]
            do {
                rows = try outbox.fetch(after: cursor, limit: limit)
            } catch {
                logger.error("outbox read failed", metadata: ["error": "\(error)"])
                Thread.sleep(forTimeInterval: 0.5)
                continue
            }
            if rows.count < limit { maybeMore = false }
            for row in rows {
                let message = row.message
                switch client.publish(topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain) {
                case .inFlight(let messageID):
                    inFlight[messageID] = InFlight(row: row.id, size: message.storedSize, qos: message.qos)
                    cursor = row.id
                case .notConnected:
                    // Leave the cursor on the last row handed over; this one is
                    // retried after the next `.connected`.
                    connected = false
                    maybeMore = true
                case .rejected(let reason):
                    logger.error("message can never be published; dropping it", metadata: [
                        "outbox.id": "\(row.id)", "mqtt.topic": "\(message.topic)", "reason": "\(reason)",
                    ])
                    writer.acknowledge([(row.id, message.storedSize)])
                    cursor = row.id
                }
                if !connected { break }
            }
        }
        if !inFlight.isEmpty {
            logger.notice("stopping with messages unacknowledged; they will be sent again on restart", metadata: [
                "mqtt.in_flight": "\(inFlight.count)",
            ])
        }
        signals.update { $0.finished = true }
    }
}
