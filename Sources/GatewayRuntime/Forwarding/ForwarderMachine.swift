import Foundation
import GatewayCore
import GatewayStore

/// Every decision of one upstream connection's forwarder, with no threads,
/// sockets or clocks of its own: events in (`handle`), actions out; the
/// publishing path is asked what to read (`demand`), told what was read
/// (`offer`), asked about each message (`decide`) and told how its publish
/// went (`outcome`). `Forwarder` carries the actions out on its thread.
///
/// Two windows bound a connection. **In flight**: messages handed to the
/// client and not acknowledged, at most `window + prefetch`; the client
/// itself keeps at most `window` of them on the wire (libmosquitto queues
/// the rest and sends the next at each PUBACK, without waiting for us).
/// **Owed deletions**: a PUBACK frees its slot at once and the row is
/// handed to the outbox for deletion; rows the broker may hold that are
/// not yet deleted on disk (in flight plus unsettled deletions) never exceed
/// `window + maxUnsettled`, which bounds what a crash can send twice.
struct ForwarderMachine {
    struct Configuration: Sendable {
        /// `upstream.max_inflight`: unacknowledged publishes on the wire.
        var window: Int
        /// Handed to the client beyond the window, so the wire never waits for this thread.
        var prefetch: Int
        /// Acknowledged rows whose deletion is not committed yet, at most.
        var maxUnsettled: Int
        var publishRate: Double?
        var byteRate: Int?
        /// A connection whose oldest publish waits this long for its PUBACK
        /// is stalled and is replaced; nil: never.
        var ackTimeout: Double?

        init(window: Int, prefetch: Int? = nil, maxUnsettled: Int = ForwarderMachine.defaultMaxUnsettled,
             publishRate: Double? = nil, byteRate: Int? = nil, ackTimeout: Double? = nil) {
            self.window = window
            self.prefetch = prefetch ?? window
            self.maxUnsettled = maxUnsettled
            self.publishRate = publishRate
            self.byteRate = byteRate
            self.ackTimeout = ackTimeout
        }
    }

    /// The default cap on owed deletions per connection: at 25,000 PUBACKs/s
    /// this is 40 ms of deletions, many group commits' worth.
    static let defaultMaxUnsettled = 1000
    /// While the client holds a queue, PUBACKs wake the forwarder in batches
    /// (see `wake`), or after this long.
    static let ackLinger = 0.002

    enum Event: Sendable, Equatable {
        case connected
        case disconnected
        /// PUBACK (QoS 1) or written to the socket (QoS 0).
        case published(messageID: Int32)
        case refused(messageID: Int32, code: Int, reason: String, transient: Bool)
        /// The outbox has new messages for this connection.
        case newMessages
        /// This many of the rows handed back for deletion are deleted on disk.
        case settled(count: Int)
        /// Publish nothing more; wait for what is in flight until `drainFor` seconds pass.
        case stop(drainFor: Double)
    }

    struct InFlight: Sendable, Equatable {
        var key: MessageKey
        var size: Int
        var qos: QoS
        var receivedAt: Date
        /// When it was handed over (or resent after a reconnect), monotonic.
        var sentAt: Double = 0
        /// For the log line of a refusal: references to the message's own
        /// strings (no copy of their bytes).
        var topic: String
        var mapping: String
    }

    struct RowRef: Sendable, Equatable {
        var id: Int64
        var size: Int
    }

    enum Action: Sendable, Equatable {
        /// Tell the outbox and the metrics.
        case connection(up: Bool)
        /// QoS 1 messages the client sends again (DUP) after a reconnect.
        case resent(count: Int)
        /// Rows to delete with the next group commit; `expired`: not delivered but expired.
        case delete([RowRef], expired: Bool)
        /// The broker took these: latency metrics and `ack: delivered` answers.
        case delivered([InFlight])
        case dropped(reason: String, qos: QoS, count: Int)
        case expiredQoS0(count: Int)
        /// QoS 0 entries up to this sequence left the memory queue.
        case consumeQoS0(through: UInt64)
        /// A transient refusal: this connection pauses.
        case pausing(code: Int, reason: String, pause: Double, topic: String, mapping: String)
        /// A permanent refusal: the message is dropped.
        case refusedForGood(code: Int, reason: String, qos: QoS, topic: String, mapping: String)
        /// The client can never send it as it is.
        case rejected(topic: String, mapping: String, reason: String, qos: QoS)
        /// The broker stopped acknowledging on a live connection: drop it and connect again.
        case reconnect(reason: String)
    }

    /// What to read before the next publishes.
    struct Demand: Sendable, Equatable {
        /// Rows the broker asked to have sent again, first.
        var retry: [Int64]
        /// Then the oldest messages after this row ID, at most `fresh` of them.
        var after: Int64
        var fresh: Int
    }

    struct Candidate: Sendable, Equatable {
        var key: MessageKey
        var message: OutboundMessage
    }

    enum Decision: Sendable, Equatable {
        case publish(expiresIn: UInt32?)
        /// Expired: dropped unsent (collected until `endBatch`).
        case expire
        /// Over the rate limits: neither this nor anything after it now.
        case hold
    }

    /// When the forwarder thread should wake even without an event.
    struct Wake: Sendable, Equatable {
        var deadline: Double?
        /// PUBACKs that wake it; above 1 only while the client holds a queue.
        var acks: Int
    }

    let configuration: Configuration
    private(set) var connected = false
    private var everConnected = false
    private(set) var inFlight: [Int32: InFlight] = [:]
    /// Every row up to here was published, expired or dropped.
    private(set) var cursor: Int64 = 0
    private var maybeMore = true
    private var limiter: PublishLimiter
    /// When the rate limits (or a transient refusal) allow the next publish.
    private(set) var throttledUntil: Double?
    /// Rows the broker refused for now, published again before anything new.
    private(set) var retry: [Int64] = []
    /// Pause after the next transient refusal: doubles up to 30 s, back to 1 s
    /// after 30 s without one.
    private var refusalPause = 1.0
    private var lastRefusal: Double?
    /// Rows handed back for deletion and not yet deleted on disk.
    private(set) var unsettled = 0
    /// Set by `.stop`: the moment to give up waiting for PUBACKs.
    private(set) var drainUntil: Double?
    /// Collected during one batch (`decide`/`outcome`), emitted by `endBatch`.
    private var batchExpired: [RowRef] = []
    private var batchExpiredQoS0 = 0
    private var batchLastQoS0: UInt64?
    /// When the stalled-connection check runs next; a reconnect asked for
    /// is not asked again until the next `.connected`.
    private var nextStallCheck = 0.0
    private var reconnectRequested = false

    init(_ configuration: Configuration) {
        self.configuration = configuration
        self.limiter = PublishLimiter(publishRate: configuration.publishRate, byteRate: configuration.byteRate)
    }

    var isStopping: Bool { drainUntil != nil }

    /// Stopping, and nothing more to wait for.
    func isFinished(now: Double) -> Bool {
        guard let drainUntil else { return false }
        return inFlight.isEmpty || !connected || now >= drainUntil
    }

    // MARK: Events

    mutating func handle(_ event: Event, now: Double) -> [Action] {
        switch event {
        case .connected:
            var actions: [Action] = []
            if everConnected {
                let resent = inFlight.values.filter { $0.qos.isDurable }.count
                if resent > 0 { actions.append(.resent(count: resent)) }
            }
            connected = true
            everConnected = true
            maybeMore = true
            reconnectRequested = false
            // What the client resends now gets a new chance to be acknowledged.
            for messageID in inFlight.keys { inFlight[messageID]?.sentAt = now }
            actions.append(.connection(up: true))
            return actions
        case .disconnected:
            connected = false
            var actions: [Action] = [.connection(up: false)]
            // The client drops unsent QoS 0 packets on a disconnect; QoS 1 stays with it.
            let lost = inFlight.filter { $0.value.qos == .atMostOnce }.map(\.key)
            for messageID in lost { inFlight.removeValue(forKey: messageID) }
            if !lost.isEmpty { actions.append(.dropped(reason: "offline", qos: .atMostOnce, count: lost.count)) }
            return actions
        case .published(let messageID):
            guard let entry = inFlight.removeValue(forKey: messageID) else { return [] }
            var actions: [Action] = []
            if case .row(let id) = entry.key { actions.append(delete([RowRef(id: id, size: entry.size)], expired: false)) }
            actions.append(.delivered([entry]))
            return actions
        case .refused(let messageID, let code, let reason, let transient):
            guard let entry = inFlight.removeValue(forKey: messageID) else { return [] }
            return refused(entry, code: code, reason: reason, transient: transient, now: now)
        case .newMessages:
            maybeMore = true
            return []
        case .settled(let count):
            unsettled = max(0, unsettled - count)
            return []
        case .stop(let drainFor):
            drainUntil = now + drainFor
            return []
        }
    }

    /// Folds a run of events into one list of actions, with the deletions
    /// and deliveries of many PUBACKs merged into one of each.
    mutating func handle(_ events: [Event], now: Double) -> [Action] {
        var actions: [Action] = []
        var deleted: [RowRef] = []
        var delivered: [InFlight] = []
        deleted.reserveCapacity(events.count)
        delivered.reserveCapacity(events.count)
        for event in events {
            if case .published(let messageID) = event {
                // The common event, folded in place: through `handle(_:)`
                // each PUBACK built three arrays of one.
                guard let entry = inFlight.removeValue(forKey: messageID) else { continue }
                if case .row(let id) = entry.key {
                    deleted.append(RowRef(id: id, size: entry.size))
                    unsettled += 1
                }
                delivered.append(entry)
                continue
            }
            for action in handle(event, now: now) {
                switch action {
                case .delete(let rows, expired: false): deleted += rows
                case .delivered(let entries): delivered += entries
                default: actions.append(action)
                }
            }
        }
        if !deleted.isEmpty { actions.append(.delete(deleted, expired: false)) }
        if !delivered.isEmpty { actions.append(.delivered(delivered)) }
        return actions
    }

    private mutating func delete(_ rows: [RowRef], expired: Bool) -> Action {
        unsettled += rows.count
        return .delete(rows, expired: expired)
    }

    private mutating func refused(_ entry: InFlight, code: Int, reason: String, transient: Bool, now: Double) -> [Action] {
        if transient, case .row(let id) = entry.key {
            if let last = lastRefusal, now - last > 30 { refusalPause = 1 }
            lastRefusal = now
            retry.append(id)
            throttledUntil = max(throttledUntil ?? 0, now + refusalPause)
            let pause = refusalPause
            refusalPause = min(30, refusalPause * 2)
            maybeMore = true
            return [.pausing(code: code, reason: reason, pause: pause, topic: entry.topic, mapping: entry.mapping)]
        }
        var actions: [Action] = [.refusedForGood(code: code, reason: reason, qos: entry.qos, topic: entry.topic, mapping: entry.mapping)]
        if case .row(let id) = entry.key { actions.append(delete([RowRef(id: id, size: entry.size)], expired: false)) }
        return actions
    }

    // MARK: Publishing

    /// Free handover slots: bounded by the in-flight window and by the owed deletions.
    var room: Int {
        let window = configuration.window
        let handover = window + configuration.prefetch - inFlight.count
        let owed = window + configuration.maxUnsettled - unsettled - inFlight.count
        return max(0, min(handover, owed))
    }

    /// What to read now; nil when nothing may be published.
    mutating func demand(now: Double) -> Demand? {
        if let until = throttledUntil {
            guard now >= until else { return nil }
            throttledUntil = nil
        }
        guard connected, !isStopping, maybeMore || !retry.isEmpty else { return nil }
        let limit = room
        guard limit > 0 else { return nil }
        let again = Array(retry.prefix(limit))
        return Demand(retry: again, after: cursor, fresh: limit - again.count)
    }

    /// What was read for `demand`, in publishing order: the retried rows,
    /// then rows and QoS 0 entries merged oldest first (a durable row first
    /// on a tie). Whether more may be waiting follows from how full it came back.
    mutating func offer(retried: [StoredMessage], rows: [StoredMessage], volatile: [VolatileEntry], for demand: Demand) -> [Candidate] {
        let fresh = demand.fresh
        maybeMore = rows.count >= fresh || volatile.count >= fresh || rows.count + volatile.count > fresh
        var batch = retried.map { Candidate(key: .row($0.id), message: $0.message) }
        // A retried row that is gone (deleted by the operator) is not retried.
        let found = Set(retried.map(\.id))
        retry.removeAll { demand.retry.contains($0) && !found.contains($0) }
        batch.reserveCapacity(batch.count + fresh)
        var r = 0, v = 0
        while batch.count - retried.count < fresh && (r < rows.count || v < volatile.count) {
            let takeRow = v == volatile.count || (r < rows.count && rows[r].message.receivedAt <= volatile[v].message.receivedAt)
            if takeRow {
                batch.append(Candidate(key: .row(rows[r].id), message: rows[r].message))
                r += 1
            } else {
                batch.append(Candidate(key: .volatile(volatile[v].sequence), message: volatile[v].message))
                v += 1
            }
        }
        return batch
    }

    /// Whether `candidate` goes out now. `wallNow` only judges expiry
    /// (expiry times are wall-clock timestamps that travel with the message).
    mutating func decide(_ candidate: Candidate, now: Double, wallNow: Date) -> Decision {
        let message = candidate.message
        if message.isExpired(at: wallNow) {
            switch candidate.key {
            case .row(let id):
                batchExpired.append(RowRef(id: id, size: message.storedSize))
                passed(id)
            case .volatile(let sequence):
                batchExpiredQoS0 += 1
                batchLastQoS0 = sequence
            }
            return .expire
        }
        let wait = limiter.delay(bytes: message.storedSize, now: now)
        if wait > 0 {
            throttledUntil = now + wait
            maybeMore = true
            return .hold
        }
        let expiresIn = message.expiresAt.map { UInt32(clamping: Int(max(1, $0.timeIntervalSince(wallNow).rounded(.up)))) }
        return .publish(expiresIn: expiresIn)
    }

    /// How handing `candidate` to the client went.
    mutating func outcome(_ candidate: Candidate, _ outcome: PublishOutcome, now: Double) -> [Action] {
        let message = candidate.message
        switch outcome {
        case .inFlight(let messageID):
            limiter.record(bytes: message.storedSize, now: now)
            inFlight[messageID] = InFlight(
                key: candidate.key, size: message.storedSize, qos: message.qos, receivedAt: message.receivedAt, sentAt: now,
                topic: message.topic, mapping: message.mapping
            )
            taken(candidate.key)
            return []
        case .notConnected:
            // Not taken: it goes first after the next `.connected`.
            connected = false
            maybeMore = true
            return []
        case .rejected(let reason):
            taken(candidate.key)
            var actions: [Action] = [.rejected(topic: message.topic, mapping: message.mapping, reason: reason, qos: message.qos)]
            if case .row(let id) = candidate.key { actions.append(delete([RowRef(id: id, size: message.storedSize)], expired: false)) }
            return actions
        }
    }

    /// Whether the batch may go on after an outcome.
    var mayContinue: Bool { connected }

    /// Ends a batch: expired rows go for deletion (counted as expired when
    /// that commits), and QoS 0 entries leave the memory queue.
    mutating func endBatch() -> [Action] {
        var actions: [Action] = []
        if let last = batchLastQoS0 { actions.append(.consumeQoS0(through: last)) }
        if !batchExpired.isEmpty { actions.append(delete(batchExpired, expired: true)) }
        if batchExpiredQoS0 > 0 { actions.append(.expiredQoS0(count: batchExpiredQoS0)) }
        batchExpired = []
        batchExpiredQoS0 = 0
        batchLastQoS0 = nil
        return actions
    }

    private mutating func taken(_ key: MessageKey) {
        switch key {
        case .row(let id): passed(id)
        case .volatile(let sequence): batchLastQoS0 = sequence
        }
    }

    private mutating func passed(_ id: Int64) {
        cursor = max(cursor, id)
        if !retry.isEmpty { retry.removeAll { $0 == id } }
    }

    // MARK: A stalled connection

    /// Asks for a new connection when the oldest publish in flight has
    /// waited `ackTimeout` for its PUBACK on a live connection (a broker or
    /// middlebox that stopped answering; keep-alive alone misses one that
    /// still answers PINGREQ). Looked at once a second at most.
    mutating func checkStall(now: Double) -> [Action] {
        guard let timeout = configuration.ackTimeout, connected, !reconnectRequested,
              !inFlight.isEmpty, now >= nextStallCheck else { return [] }
        nextStallCheck = now + min(1, timeout / 4)
        guard let oldest = inFlight.values.lazy.map(\.sentAt).min(), now - oldest >= timeout else { return [] }
        reconnectRequested = true
        return [.reconnect(reason: "no PUBACK in \(String(format: "%g", timeout)) s for the oldest of \(inFlight.count) messages in flight")]
    }

    // MARK: Waking

    /// When to wake without an event, and how many PUBACKs wake it. While
    /// the client holds more than the window, PUBACKs go out of its queue
    /// by themselves, so the forwarder tops it up once about half the
    /// queue is gone rather than for each one.
    func wake(now: Double) -> Wake {
        var deadline: Double?
        if let drainUntil { return Wake(deadline: drainUntil, acks: 1) }
        if connected, let until = throttledUntil { deadline = until }
        if connected, configuration.ackTimeout != nil, !inFlight.isEmpty, !reconnectRequested {
            deadline = min(deadline ?? .infinity, max(nextStallCheck, now + 0.001))
        }
        let queued = inFlight.count - configuration.window
        guard connected, queued > 0 else { return Wake(deadline: deadline, acks: 1) }
        let acks = max(1, (queued + 1) / 2)
        if acks > 1 { deadline = min(deadline ?? .infinity, now + Self.ackLinger) }
        return Wake(deadline: deadline, acks: acks)
    }

    /// Whether publishing could go on right now without an event.
    func canPublish(now: Double) -> Bool {
        let throttled = throttledUntil.map { now < $0 } ?? false
        return connected && !isStopping && !throttled && (maybeMore || !retry.isEmpty) && room > 0
    }
}
