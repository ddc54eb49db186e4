import Foundation
import GatewayCore
import Logging

/// The QoS-aware outbox, in four parts:
/// - `Capacity`: `max_messages` / `max_bytes` over both QoS, shedding the
///   oldest QoS 0 entry before refusing anything;
/// - `CommitQueue` and the writer thread (`Outbox+Writer`): QoS 1 messages
///   are grouped into SQLite transactions (one fsync serves many), and the
///   deletions of delivered rows ride along;
/// - one `OutboxLane` per upstream connection: its QoS 0 memory queue, its
///   recently committed rows, and the only way its forwarder reads and
///   hands back messages;
/// - this facade: `submit` for the ingress, depth and health for the admin API.
///
/// A forwarder sees a committed row only after its completion has run
/// (`visibleThrough`), so whatever the completion registers (an `ack:
/// delivered` waiter) is in place before the row can be published.
public final class Outbox: Sendable {
    public typealias Completion = @Sendable (Result<Int64, OutboxError>) -> Void

    let store: OutboxStore
    let logger: Logger
    let observer: GatewayObserver
    let state: Guarded<OutboxState>
    let onVisible: Guarded<Callback?>
    let writer = WorkerThread(name: "outbox-writer")
    /// Disk space given up when a commit fails for want of it; nil: none kept.
    let reserve: DiskReserve?
    /// One line per storm of failing commits, not one per commit.
    let failures = LogThrottle(interval: 60)
    /// One per upstream connection, in connection order.
    public let lanes: [OutboxLane]

    public init(
        store: OutboxStore, settings: OutboxSettings, logger: Logger, observer: GatewayObserver = NoObserver(),
        reserve: DiskReserve? = nil
    ) throws(OutboxError) {
        self.store = store
        self.reserve = reserve
        self.logger = logger
        self.observer = observer
        let lastID = try store.lastID()
        let state = Guarded(OutboxState(
            capacity: Capacity(limits: settings, durable: try store.counts()),
            lanes: Array(repeating: LaneState(recent: RecentRows(coveredAfter: lastID)), count: store.shards),
            commits: CommitQueue(settings: settings, now: MonotonicClock.now()),
            visibleThrough: lastID
        ))
        self.state = state
        self.onVisible = Guarded(nil)
        self.lanes = (0..<store.shards).map { OutboxLane(index: $0, state: state, store: store, observer: observer) }
    }

    /// Called on the writer thread after new rows became visible, and after a
    /// QoS 0 message was queued: wakes the forwarders.
    public func whenNewMessages(_ action: @escaping @Sendable () -> Void) {
        onVisible.withLock { $0 = Callback(run: action) }
    }

    public func start() {
        writer.start { [self] in runWriter() }
    }

    // MARK: Ingress side

    /// Admits a message or refuses it at once. QoS 1 messages complete on the
    /// writer thread after their commit; QoS 0 messages are queued now, and
    /// `onQueued` runs with their sequence number before a forwarder can
    /// see them (it runs under the outbox's lock: keep it short, and never
    /// call back into the outbox from it).
    public func submit(
        _ message: OutboundMessage,
        onQueued: ((UInt64) -> Void)? = nil,
        completion: @escaping Completion
    ) throws(OutboxRefusal) -> Admission {
        var shed = 0
        let now = MonotonicClock.now()
        var result: Result<Admission, OutboxRefusal> = .failure(.stopping)
        state.updateWakingIf { state in
            let seen = state.commits.generation
            result = Self.admit(message, onQueued: onQueued, completion: completion, now: now, shed: &shed, into: &state)
            guard case .success(.pending) = result else { return true }
            // The writer sleeps until the queue's generation moves or its
            // inserts fall due: a message that changes neither (it joins a
            // group lingering for company) needs no wake-up, which had cost
            // a futex call per message and a writer that woke only to sleep.
            return state.commits.generation != seen || state.commits.insertsDue(now: now)
        }
        if shed > 0 { observer.messagesShed(count: shed) }
        switch result {
        case .success(.dropped):
            observer.messagesDropped(reason: "offline", qos: .atMostOnce, count: 1)
            return .dropped
        case .success(let admission):
            if case .queued = admission {
                observer.messageAccepted(qos: .atMostOnce, mapping: message.mapping)
                onVisible.withLock { $0 }?.run()
            }
            return admission
        case .failure(let refusal):
            countRefusal(refusal)
            throw refusal
        }
    }

    /// `submit`'s decision, under the outbox's lock.
    private static func admit(
        _ message: OutboundMessage, onQueued: ((UInt64) -> Void)?, completion: @escaping Completion, now: Double,
        shed: inout Int, into state: inout OutboxState
    ) -> Result<Admission, OutboxRefusal> {
        guard state.accepting else { return .failure(.stopping) }
        if state.storageFull && message.qos.isDurable {
            state.refusedWhileFull += 1
            return .failure(.storageFull)
        }
        let lane = ShardHash.shard(message.shardHash, of: state.lanes.count)
        switch state.capacity.admit(message, lane: lane, lanes: &state.lanes, shed: &shed) {
        case .success(.pending):
            state.commits.insert(.init(message: message, completion: completion), now: now)
            return .success(.pending)
        case .success(.queued):
            let sequence = state.nextSequence
            state.nextSequence += 1
            onQueued?(sequence)
            state.lanes[lane].volatile.append(VolatileEntry(sequence: sequence, message: message))
            return .success(.queued(sequence: sequence))
        case let other:
            return other
        }
    }

    func countRefusal(_ refusal: OutboxRefusal) {
        switch refusal {
        case .full: observer.messageRefused(reason: "full")
        case .storageFull: observer.messageRefused(reason: "disk_full")
        case .stopping: observer.messageRefused(reason: "stopping")
        }
    }

    // MARK: Depth and health

    /// The highest row ID a forwarder may read.
    public var visibleThrough: Int64 { state.withLock { $0.visibleThrough } }

    /// Whether the last commit succeeded (a full or failing disk makes it false).
    public var isWritable: Bool { state.withLock { $0.writable } }

    /// Whether QoS 1 messages are being refused because the disk is full.
    public var isStorageFull: Bool { state.withLock { $0.storageFull } }

    /// How many upstream connections are up, as the forwarders last reported.
    public var connectedCount: Int { state.withLock { $0.lanes.filter(\.connected).count } }

    /// Whether every upstream connection is up.
    public var upstreamConnected: Bool { state.withLock { $0.lanes.allSatisfy(\.connected) } }

    /// QoS 1 messages stored or about to be.
    public var durableCounts: OutboxCounts { state.withLock { $0.capacity.durable } }

    /// Everything queued, both QoS, from memory alone (`snapshot` also reads
    /// the database for the oldest row's age, which a status line needs not).
    public var queuedCounts: OutboxCounts {
        state.withLock {
            OutboxCounts(messages: $0.capacity.durable.messages + $0.lanes.volatileCount, bytes: $0.capacity.durable.bytes + $0.lanes.volatileBytes)
        }
    }

    /// Depth by QoS, with the oldest message's age.
    public func snapshot(now: Date = Date()) -> OutboxSnapshot {
        let (durable, volatileCount, volatileBytes, oldestVolatile) = state.withLock {
            ($0.capacity.durable, $0.lanes.volatileCount, $0.lanes.volatileBytes,
             $0.lanes.compactMap { $0.volatile.first?.message.receivedAt }.min())
        }
        let oldestDurable = durable.messages > 0 ? (try? store.oldestReceivedAt()) ?? nil : nil
        func age(_ date: Date?) -> Double { date.map { max(0, now.timeIntervalSince($0)) } ?? 0 }
        return OutboxSnapshot(
            qos0: .init(messages: volatileCount, bytes: volatileBytes, oldestAge: age(oldestVolatile)),
            qos1: .init(messages: durable.messages, bytes: durable.bytes, oldestAge: age(oldestDurable))
        )
    }

    // MARK: Lifecycle

    /// Refuses new messages from now on; those already submitted are still committed.
    public func stopAccepting() {
        state.update { $0.accepting = false }
    }

    /// Stops accepting, commits everything submitted or acknowledged so far,
    /// and returns once the writer thread has ended. Queued QoS 0 messages
    /// are lost, as QoS 0 allows.
    public func shutdown() {
        writer.stop {
            state.update {
                $0.accepting = false
                $0.stopRequested = true
            }
        }
        let lost = state.withLock { state in
            state.lanes.indices.reduce(0) { $0 + state.lanes[$1].volatile.removeAll().count }
        }
        if lost > 0 {
            logger.notice("queued QoS 0 messages dropped at shutdown", metadata: ["outbox.qos0": "\(lost)"])
        }
    }
}
