import Foundation
import GatewayCore
import GatewayStore
import Logging

/// Drains one outbox lane into one upstream connection on a dedicated
/// thread. Every decision is `ForwarderMachine`'s; this carries its actions
/// out: it sleeps until an event (or the machine's deadline), reads what
/// the machine asks for, hands messages to the client, and passes rows
/// back to the outbox for deletion.
///
/// A row goes back for deletion only when the broker acknowledged it (QoS 1)
/// or it was written to the socket (QoS 0). QoS 1 messages in flight at a
/// disconnect stay with the client, which resends them (DUP) before anything
/// new after reconnecting; QoS 0 messages in flight are dropped then, as QoS
/// 0 allows. After a restart, delivery starts again from the oldest row.
public final class Forwarder: Sendable {
    struct Signals: Sendable {
        var events: [ForwarderMachine.Event] = []
        /// How many of `events` are PUBACKs.
        var acks = 0
        /// How many PUBACKs wake the forwarder (the machine's `wake`).
        var ackWakeAt = 1
        var newData = false
        var stop: Double?
    }

    private let lane: OutboxLane
    private let client: UpstreamClient
    private let configuration: ForwarderMachine.Configuration
    private let tracker: DeliveryTracker?
    private let observer: GatewayObserver
    private let logger: Logger
    private let signals = Guarded(Signals())
    private let thread = WorkerThread(name: "forwarder")

    /// `ackTimeout`: a connection whose oldest publish waits this long for
    /// its PUBACK is replaced (nil: never).
    public convenience init(
        lane: OutboxLane, client: UpstreamClient, window: Int,
        publishRate: Double? = nil, byteRate: Int? = nil, ackTimeout: Double? = nil, tracker: DeliveryTracker? = nil,
        observer: GatewayObserver = NoObserver(), logger: Logger
    ) {
        self.init(
            lane: lane, client: client,
            configuration: ForwarderMachine.Configuration(
                window: window, publishRate: publishRate, byteRate: byteRate, ackTimeout: ackTimeout
            ),
            tracker: tracker, observer: observer, logger: logger
        )
    }

    init(
        lane: OutboxLane, client: UpstreamClient, configuration: ForwarderMachine.Configuration,
        tracker: DeliveryTracker?, observer: GatewayObserver, logger: Logger
    ) {
        self.lane = lane
        self.client = client
        self.configuration = configuration
        self.tracker = tracker
        self.observer = observer
        self.logger = logger
    }

    public func start() {
        client.start { [signals, observer, connection = lane.index] event in
            // Counted here, on the client's thread: the forwarder's
            // decisions do not depend on failed attempts.
            if case .connectFailed(let failure) = event {
                observer.upstreamConnectFailed(connection, reason: failure)
                return
            }
            signals.updateWakingIf { signals in
                switch event {
                case .connected: signals.events.append(.connected)
                case .disconnected: signals.events.append(.disconnected)
                case .published(let messageID):
                    signals.events.append(.published(messageID: messageID))
                    signals.acks += 1
                    return signals.acks >= signals.ackWakeAt
                case .refused(let messageID, let code, let reason, let transient):
                    signals.events.append(.refused(messageID: messageID, code: code, reason: reason, transient: transient))
                case .connectFailed:
                    return false
                }
                return true
            }
        }
        lane.whenSettled { [signals] rows in
            signals.update { $0.events.append(.settled(count: rows)) }
        }
        thread.start { [self] in run() }
    }

    /// New messages may be visible in the outbox.
    public func notifyNewData() {
        signals.update { $0.newData = true }
    }

    /// Stops publishing new messages, waits up to `drainTimeout` for the
    /// acknowledgements of those in flight, then disconnects.
    public func stop(drainTimeout: TimeInterval) {
        thread.stop { signals.update { $0.stop = drainTimeout } }
        client.stop()
    }

    // MARK: The forwarder thread

    private func run() {
        var machine = ForwarderMachine(configuration)
        var readAhead = ReadAhead()
        var reportedInFlight = 0
        while true {
            thread.beat()
            let now = MonotonicClock.now()
            if machine.isFinished(now: now) { break }
            let wake = machine.wake(now: now)
            let canPublish = machine.canPublish(now: now)
            let stopping = machine.isStopping
            signals.withLock { $0.ackWakeAt = wake.acks }
            let events = thread.idle { signals.wait(
                until: { $0.events.count > $0.acks || $0.acks >= $0.ackWakeAt || $0.newData || canPublish || ($0.stop != nil && !stopping) },
                deadline: wake.deadline.map { Deadline(seconds: $0) },
                then: { signals -> [ForwarderMachine.Event] in
                    // Taken, not copied: appending to a copy, then emptying
                    // the original "keeping capacity", made two buffers a turn.
                    var events: [ForwarderMachine.Event] = []
                    swap(&events, &signals.events)
                    if signals.newData { events.append(.newMessages) }
                    if let drain = signals.stop, !stopping { events.append(.stop(drainFor: drain)) }
                    signals.acks = 0
                    signals.newData = false
                    return events
                }
            ) }
            perform(machine.handle(events, now: MonotonicClock.now()))
            perform(machine.checkStall(now: MonotonicClock.now()))
            publish(&machine, &readAhead)
            // Once a turn, and only when it changed: one atomic store.
            if machine.inFlight.count != reportedInFlight {
                reportedInFlight = machine.inFlight.count
                observer.upstreamInFlight(lane.index, count: reportedInFlight)
            }
        }
        if !machine.inFlight.isEmpty {
            logger.notice("stopping with messages unacknowledged; they will be sent again on restart", metadata: [
                "mqtt.in_flight": "\(machine.inFlight.count)", "mqtt.connection": "\(lane.index)",
            ])
        }
    }

    /// Fills the free handover slots with the oldest queued messages, after
    /// any the broker asked to have sent again.
    private func publish(_ machine: inout ForwarderMachine, _ readAhead: inout ReadAhead) {
        guard let demand = machine.demand(now: MonotonicClock.now()) else { return }
        let retried: [StoredMessage]
        let rows: [StoredMessage]
        do {
            retried = demand.retry.isEmpty ? [] : try lane.rows(ids: demand.retry)
            // Lately committed rows come from memory; a backlog from disk.
            rows = try lane.takeCommitted(after: demand.after, limit: demand.fresh)
                ?? backlog(after: demand.after, limit: demand.fresh, &readAhead)
        } catch {
            logger.error("outbox read failed", metadata: ["error": "\(error)", "mqtt.connection": "\(lane.index)"])
            Thread.sleep(forTimeInterval: 0.5)
            return
        }
        let volatile = lane.peekVolatile(limit: demand.fresh)
        let batch = machine.offer(retried: retried, rows: rows, volatile: volatile, for: demand)
        let wallNow = Date()
        loop: for candidate in batch {
            let now = MonotonicClock.now()
            switch machine.decide(candidate, now: now, wallNow: wallNow) {
            case .expire:
                continue
            case .hold:
                break loop
            case .publish(let expiresIn):
                let message = candidate.message
                let outcome = client.publish(
                    topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain, expiresIn: expiresIn
                )
                perform(machine.outcome(candidate, outcome, now: now))
                if !machine.mayContinue { break loop }
            }
        }
        perform(machine.endBatch())
    }

    /// Rows after `cursor` from a backlog on disk, read `ReadAhead.batch`
    /// at a time (see `ReadAhead`).
    private func backlog(after cursor: Int64, limit: Int, _ readAhead: inout ReadAhead) throws(OutboxError) -> [StoredMessage] {
        readAhead.drop(through: cursor)
        if readAhead.count < limit {
            let from = max(cursor, readAhead.lastID ?? cursor)
            readAhead.append(try lane.backlog(after: from, limit: max(limit, ReadAhead.batch)))
        }
        return readAhead.prefix(limit)
    }

    private func perform(_ actions: [ForwarderMachine.Action]) {
        for action in actions {
            switch action {
            case .connection(let up):
                lane.setConnected(up)
                observer.upstreamConnection(lane.index, connected: up)
            case .resent(let count):
                observer.messagesResent(count: count)
            case .delete(let rows, let expired):
                lane.acknowledge(rows.map { ($0.id, $0.size) }, expired: expired)
            case .delivered(let entries):
                let now = Date()
                for qos in [QoS.atMostOnce, .atLeastOnce, .exactlyOnce] {
                    let latencies = entries.filter { $0.qos == qos }.map { now.timeIntervalSince($0.receivedAt) }
                    if !latencies.isEmpty { observer.messagesDelivered(qos: qos, latencies: latencies) }
                }
                tracker?.delivered(entries.map(\.key))
            case .dropped(let reason, let qos, let count):
                observer.messagesDropped(reason: reason, qos: qos, count: count)
            case .expiredQoS0(let count):
                observer.messagesExpired(qos: .atMostOnce, count: count)
            case .consumeQoS0(let sequence):
                lane.consumeVolatile(through: sequence)
            case .pausing(let code, let reason, let pause, let topic, let mapping):
                observer.brokerRefused(reasonCode: code)
                logger.warning("broker refused a message for now; slowing down", metadata: [
                    "mqtt.reason_code": "0x\(String(code, radix: 16))", "reason": "\(reason)",
                    "mqtt.connection": "\(lane.index)", "mqtt.pause": "\(pause)s",
                    "mqtt.topic": "\(topic)", "mapping": "\(mapping)",
                ])
            case .refusedForGood(let code, let reason, let qos, let topic, let mapping):
                observer.brokerRefused(reasonCode: code)
                logger.error("broker refused a message for good; dropping it", metadata: [
                    "mqtt.reason_code": "0x\(String(code, radix: 16))", "reason": "\(reason)", "mqtt.connection": "\(lane.index)",
                    "mqtt.topic": "\(topic)", "mapping": "\(mapping)",
                ])
                observer.messagesDropped(reason: "rejected", qos: qos, count: 1)
            case .reconnect(let reason):
                logger.warning("upstream stalled; reconnecting", metadata: ["reason": "\(reason)", "mqtt.connection": "\(lane.index)"])
                client.reconnect()
            case .rejected(let topic, let mapping, let reason, let qos):
                logger.error("message can never be published; dropping it", metadata: [
                    "mqtt.topic": "\(topic)", "mapping": "\(mapping)", "reason": "\(reason)",
                ])
                observer.messagesDropped(reason: "rejected", qos: qos, count: 1)
            }
        }
    }
}
