import DequeModule
import Foundation
import GatewayCore
import GatewayStore
import Logging

/// Drains the outbox into the upstream connection on a dedicated thread.
///
/// It keeps at most `window` publishes in flight and maps each MQTT message
/// ID to its outbox entry. QoS 1 rows and QoS 0 memory entries are merged in
/// acceptance order. A row goes back to the outbox for deletion only when the
/// broker acknowledged it (QoS 1) or it was written to the socket (QoS 0).
/// QoS 1 messages in flight at a disconnect stay with the client, which
/// resends them (DUP) before anything new after reconnecting; QoS 0 messages
/// in flight are dropped then, as QoS 0 allows. After a restart, delivery
/// starts again from the oldest row. Expired messages are dropped unsent.
public final class Forwarder: Sendable {
    struct Signals: Sendable {
        var events: [UpstreamEvent] = []
        /// How many of `events` are PUBACKs (`.published`).
        var acks = 0
        /// How many PUBACKs wake the forwarder; above 1 only while its
        /// window is full (see `ackWakeThreshold`).
        var ackWakeAt = 1
        var newData = false
        var stopRequested = false
        var drainDeadline: Date?
        var finished = false
    }

    private let outbox: Outbox
    private let client: UpstreamClient
    private let window: Int
    /// Which connection this forwarder drives: it publishes only the
    /// messages sharded to it.
    private let shard: Int
    private let publishRate: Double?
    private let byteRate: Int?
    private let tracker: DeliveryTracker?
    private let observer: GatewayObserver
    private let logger: Logger
    private let signals = Guarded(Signals())

    public init(
        outbox: Outbox, client: UpstreamClient, window: Int, shard: Int = 0,
        publishRate: Double? = nil, byteRate: Int? = nil, tracker: DeliveryTracker? = nil,
        observer: GatewayObserver = NoObserver(), logger: Logger
    ) {
        self.outbox = outbox
        self.client = client
        self.window = window
        self.shard = shard
        self.publishRate = publishRate
        self.byteRate = byteRate
        self.tracker = tracker
        self.observer = observer
        self.logger = logger
    }

    public func start() {
        client.start { [signals] event in
            signals.updateWakingIf { signals in
                signals.events.append(event)
                guard case .published = event else { return true }
                signals.acks += 1
                return signals.acks >= signals.ackWakeAt
            }
        }
        NamedThread.start("forwarder") { [self] in run() }
    }

    /// New messages may be visible in the outbox.
    public func notifyNewData() {
        signals.update { $0.newData = true }
    }

    /// Stops publishing new messages, waits up to `drainTimeout` for the
    /// acknowledgements of those in flight, then disconnects.
    public func stop(drainTimeout: TimeInterval) {
        signals.update {
            $0.stopRequested = true
            $0.drainDeadline = Date().addingTimeInterval(drainTimeout)
        }
        signals.wait(until: { $0.finished }) { _ in }
        client.stop()
    }

    // MARK: The forwarder thread

    struct InFlight {
        var key: MessageKey
        var size: Int
        var qos: QoS
        var receivedAt: Date
    }

    /// State only the forwarder thread touches.
    struct Session {
        var connected = false
        var everConnected = false
        var inFlight: [Int32: InFlight] = [:]
        var cursor: Int64 = 0
        /// Backlog rows read from SQLite ahead of the window (see `backlog`).
        var readAhead = ReadAhead()
        var maybeMore = true
        var limiter: PublishLimiter
        /// When the rate limits allow the next publish; nil: now.
        var throttledUntil: Double?
        /// Rows the broker refused for now (MQTT 5 quota exceeded, busy):
        /// published again before anything new.
        var retry: [Int64] = []
        /// How long to pause after the next transient refusal; doubles up to
        /// 30 s, back to 1 s after 30 s without one.
        var refusalPause = 1.0
        var lastRefusal: Double?
    }

    /// Window slots free: in flight and acknowledged-but-not-yet-deleted
    /// rows both count, so a crash can resend at most one window.
    private func freeSlots(_ session: Session) -> Int {
        window - session.inFlight.count - outbox.unsettledDeletions(shard: shard)
    }

    private func run() {
        var session = Session(limiter: PublishLimiter(publishRate: publishRate, byteRate: byteRate))
        while true {
            let throttled = session.throttledUntil.map { $0 > MonotonicClock.now() } ?? false
            if !throttled { session.throttledUntil = nil }
            let canPublish = session.connected && freeSlots(session) > 0 && session.maybeMore && !throttled
            // Over the rate limits: sleep until the window lets the next one go.
            var deadline = session.throttledUntil.map { Date().addingTimeInterval(max(0, $0 - MonotonicClock.now())) }
            let ackWakeAt = ackWakeThreshold(session)
            if ackWakeAt > 1 {
                let linger = Date().addingTimeInterval(Self.ackLinger)
                deadline = min(deadline ?? linger, linger)
            }
            signals.withLock { $0.ackWakeAt = ackWakeAt }
            let wake = signals.wait(
                until: {
                    $0.events.count > $0.acks || $0.acks >= $0.ackWakeAt
                        || $0.newData || $0.stopRequested || canPublish
                },
                deadline: deadline
            ) {
                signals -> (events: [UpstreamEvent], newData: Bool, stopping: Bool, deadline: Date?) in
                defer {
                    signals.events.removeAll(keepingCapacity: true)
                    signals.acks = 0
                    signals.newData = false
                }
                return (signals.events, signals.newData, signals.stopRequested, signals.drainDeadline)
            }
            if wake.newData { session.maybeMore = true }
            handle(wake.events, &session)

            if wake.stopping {
                if session.inFlight.isEmpty || !session.connected || Date() >= (wake.deadline ?? .distantPast) { break }
                // Wait for acknowledgements without publishing more; each one
                // counts now.
                signals.withLock { $0.ackWakeAt = 1 }
                signals.wait(until: { !$0.events.isEmpty }, deadline: wake.deadline) { _ in }
                continue
            }
            let stillThrottled = session.throttledUntil.map { $0 > MonotonicClock.now() } ?? false
            if session.connected && freeSlots(session) > 0 && session.maybeMore && !stillThrottled {
                publishNext(&session)
            }
        }
        if !session.inFlight.isEmpty {
            logger.notice("stopping with messages unacknowledged; they will be sent again on restart", metadata: [
                "mqtt.in_flight": "\(session.inFlight.count)",
            ])
        }
        signals.update { $0.finished = true }
    }

    /// While the window is full a PUBACK frees no slot (the row holds it
    /// until its deletion is committed, and that commit wakes the forwarder
    /// anyway), so waking for each one would only hand it on: then the
    /// forwarder sleeps until `ackBatch` of them (or all in flight) are in,
    /// or `ackLinger` passes, whichever is first. Otherwise every PUBACK
    /// wakes it, so `ack: delivered` answers never wait.
    private func ackWakeThreshold(_ session: Session) -> Int {
        guard session.connected, freeSlots(session) <= 0 else { return 1 }
        return max(1, min(Self.ackBatch, session.inFlight.count))
    }

    static let ackBatch = 8
    static let ackLinger = 0.002

    private func handle(_ events: [UpstreamEvent], _ session: inout Session) {
        var delivered: [InFlight] = []
        for event in events {
            switch event {
            case .connected:
                if session.everConnected {
                    let resent = session.inFlight.values.filter { $0.qos.isDurable }.count
                    if resent > 0 { observer.messagesResent(count: resent) }
                }
                session.connected = true
                session.everConnected = true
                session.maybeMore = true
                outbox.setConnected(true, shard: shard)
                observer.upstreamConnection(shard, connected: true)
            case .disconnected:
                session.connected = false
                outbox.setConnected(false, shard: shard)
                observer.upstreamConnection(shard, connected: false)
                // libmosquitto drops unsent QoS 0 packets on disconnect.
                let lost = session.inFlight.filter { $0.value.qos == .atMostOnce }
                for messageID in lost.keys { session.inFlight.removeValue(forKey: messageID) }
                if !lost.isEmpty { observer.messagesDropped(reason: "offline", qos: .atMostOnce, count: lost.count) }
            case .published(let messageID):
                if let entry = session.inFlight.removeValue(forKey: messageID) {
                    delivered.append(entry)
                }
            case .refused(let messageID, let code, let reason, let transient):
                guard let entry = session.inFlight.removeValue(forKey: messageID) else { continue }
                refused(entry, code: code, reason: reason, transient: transient, &session)
            }
        }
        guard !delivered.isEmpty else { return }
        outbox.acknowledge(delivered.compactMap { entry in
            if case .row(let id) = entry.key { return (id, entry.size) }
            return nil
        }, shard: shard)
        let now = Date()
        for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
            let latencies = delivered.filter { $0.qos == qos }.map { now.timeIntervalSince($0.receivedAt) }
            if !latencies.isEmpty { observer.messagesDelivered(qos: qos, latencies: latencies) }
        }
        tracker?.delivered(delivered.map(\.key))
    }

    /// The broker refused a publish (MQTT 5 reason code). Transient refusals
    /// (quota exceeded, busy) slow this connection down and the message is
    /// sent again; the others drop it, as it can never be accepted.
    private func refused(_ entry: InFlight, code: Int, reason: String, transient: Bool, _ session: inout Session) {
        observer.brokerRefused(reasonCode: code)
        let metadata: Logger.Metadata = [
            "mqtt.reason_code": "0x\(String(code, radix: 16))", "reason": "\(reason)", "mqtt.connection": "\(shard)",
        ]
        let now = MonotonicClock.now()
        if transient, case .row(let id) = entry.key {
            if let last = session.lastRefusal, now - last > 30 { session.refusalPause = 1 }
            session.lastRefusal = now
            session.retry.append(id)
            session.throttledUntil = max(session.throttledUntil ?? 0, now + session.refusalPause)
            logger.warning("broker refused a message for now; slowing down", metadata: metadata.merging(["mqtt.pause": "\(session.refusalPause)s"]) { $1 })
            session.refusalPause = min(30, session.refusalPause * 2)
            session.maybeMore = true
            return
        }
        logger.error("broker refused a message for good; dropping it", metadata: metadata)
        observer.messagesDropped(reason: "rejected", qos: entry.qos, count: 1)
        if case .row(let id) = entry.key { outbox.acknowledge([(id, entry.size)], shard: shard) }
    }

    /// Fills the free part of the window with the oldest queued messages,
    /// after any the broker asked to have sent again.
    private func publishNext(_ session: inout Session) {
        let limit = freeSlots(session)
        guard limit > 0 else { return }
        let rows: [StoredMessage]
        let retried: [StoredMessage]
        do {
            let again = Array(session.retry.prefix(limit))
            retried = try outbox.store.fetch(ids: again)
            session.retry.removeFirst(again.count)
            // Lately committed rows come from memory; a backlog from disk.
            rows = try outbox.takeCommitted(after: session.cursor, limit: limit - retried.count, shard: shard)
                ?? backlog(after: session.cursor, limit: limit - retried.count, &session.readAhead)
        } catch {
            logger.error("outbox read failed", metadata: ["error": "\(error)"])
            Thread.sleep(forTimeInterval: 0.5)
            return
        }
        let fresh = limit - retried.count
        let volatile = outbox.peekVolatile(limit: fresh, shard: shard)
        session.maybeMore = !session.retry.isEmpty || rows.count == fresh || volatile.count == fresh || rows.count + volatile.count > fresh

        let batch = retried.map { (MessageKey.row($0.id), $0.message) } + Self.merge(rows, volatile, limit: fresh)
        let now = Date()
        var expired: [(id: Int64, size: Int)] = []
        var expiredVolatile = 0
        var lastVolatile: UInt64?
        var handled = 0
        defer {
            // Retried rows not reached (throttled, disconnected) stay first in line.
            let unsent = retried.dropFirst(handled).map(\.id)
            session.retry.insert(contentsOf: unsent, at: 0)
        }
        for item in batch {
            let (key, message) = item
            defer { handled += 1 }
            if message.isExpired(at: now) {
                switch key {
                case .row(let id):
                    expired.append((id, message.storedSize))
                    session.cursor = max(session.cursor, id)
                case .volatile(let sequence):
                    expiredVolatile += 1
                    lastVolatile = sequence
                }
                continue
            }
            let clock = MonotonicClock.now()
            let wait = session.limiter.delay(bytes: message.storedSize, now: clock)
            if wait > 0 {
                // Not taken: it goes first when the window allows.
                session.throttledUntil = clock + wait
                session.maybeMore = true
                handled -= 1
                break
            }
            let expiresIn = message.expiresAt.map { UInt32(clamping: Int(max(1, $0.timeIntervalSinceNow.rounded(.up)))) }
            let outcome = client.publish(
                topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain, expiresIn: expiresIn
            )
            if case .inFlight = outcome { session.limiter.record(bytes: message.storedSize, now: clock) }
            switch outcome {
            case .inFlight(let messageID):
                session.inFlight[messageID] = InFlight(key: key, size: message.storedSize, qos: message.qos, receivedAt: message.receivedAt)
            case .notConnected:
                // Not taken: it is retried after the next `.connected`.
                session.connected = false
                session.maybeMore = true
                handled -= 1
            case .rejected(let reason):
                logger.error("message can never be published; dropping it", metadata: [
                    "mqtt.topic": "\(message.topic)", "reason": "\(reason)",
                ])
                observer.messagesDropped(reason: "rejected", qos: message.qos, count: 1)
                if case .row(let id) = key { outbox.acknowledge([(id, message.storedSize)], shard: shard) }
            }
            if !session.connected { break }
            switch key {
            case .row(let id): session.cursor = max(session.cursor, id)
            case .volatile(let sequence): lastVolatile = sequence
            }
        }
        if let lastVolatile { outbox.consumeVolatile(through: lastVolatile, shard: shard) }
        if !expired.isEmpty {
            // Counted by the outbox when the deletion commits, so a row the
            // periodic sweep deleted meanwhile is not counted twice.
            outbox.acknowledge(expired, shard: shard, expired: true)
        }
        if expiredVolatile > 0 { observer.messagesExpired(qos: .atMostOnce, count: expiredVolatile) }
    }

    /// Rows after `cursor` from a backlog on disk. A window refills a few
    /// slots at a time as PUBACKs come back; reading those few from SQLite
    /// each time (a read transaction and a query) cost more than the rows.
    /// So rows are read `ReadAhead.batch` at a time and kept here; they are
    /// committed and change only by being deleted after delivery or expiry,
    /// both of which the publishing path copes with.
    private func backlog(after cursor: Int64, limit: Int, _ readAhead: inout ReadAhead) throws(OutboxError) -> [StoredMessage] {
        readAhead.drop(through: cursor)
        if readAhead.count < limit {
            let from = max(cursor, readAhead.lastID ?? cursor)
            let more = try outbox.store.fetch(
                after: from, through: outbox.visibleThrough, limit: max(limit, ReadAhead.batch), shard: shard
            )
            readAhead.append(more)
        }
        return readAhead.prefix(limit)
    }

    /// Oldest first by receipt time; on a tie the durable row goes first.
    static func merge(_ rows: [StoredMessage], _ volatile: [VolatileEntry], limit: Int) -> [(MessageKey, OutboundMessage)] {
        var result: [(MessageKey, OutboundMessage)] = []
        result.reserveCapacity(limit)
        var r = 0, v = 0
        while result.count < limit && (r < rows.count || v < volatile.count) {
            let takeRow: Bool
            if r == rows.count {
                takeRow = false
            } else if v == volatile.count {
                takeRow = true
            } else {
                takeRow = rows[r].message.receivedAt <= volatile[v].message.receivedAt
            }
            if takeRow {
                result.append((.row(rows[r].id), rows[r].message))
                r += 1
            } else {
                result.append((.volatile(volatile[v].sequence), volatile[v].message))
                v += 1
            }
        }
        return result
    }
}

/// Backlog rows read ahead of the forwarder's window, oldest first.
struct ReadAhead {
    static let batch = 512

    private var rows = Deque<StoredMessage>()

    var count: Int { rows.count }
    var lastID: Int64? { rows.last?.id }

    mutating func drop(through cursor: Int64) {
        while let first = rows.first, first.id <= cursor { rows.removeFirst() }
    }

    mutating func append(_ more: [StoredMessage]) {
        rows.append(contentsOf: more)
    }

    func prefix(_ limit: Int) -> [StoredMessage] {
        Array(rows.prefix(limit))
    }
}
