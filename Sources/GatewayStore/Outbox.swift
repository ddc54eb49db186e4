import Foundation
import GatewayCore
import Logging

/// Why the outbox refused a message at once.
public enum OutboxRefusal: Error, Sendable, Equatable {
    /// Capacity is reached and no QoS 0 message is left to shed.
    case full
    /// The gateway is shutting down.
    case stopping
}

/// What `submit` did with a message.
public enum Admission: Sendable, Equatable {
    /// QoS 1: it joins the next group commit; the completion follows.
    case pending
    /// QoS 0: it is queued in memory under this sequence number; no completion follows.
    case queued(sequence: UInt64)
    /// QoS 0 while disconnected under `qos0_when_offline: drop`: not kept.
    case dropped
}

/// The QoS-aware outbox. QoS 1 messages go to SQLite through one writer
/// thread that groups everything submitted while the previous transaction
/// ran into the next one (so the cost of an fsync is shared); QoS 0 messages
/// wait in a bounded memory queue.
///
/// Capacity (`max_messages`, `max_bytes`) counts both. When it is reached,
/// the oldest QoS 0 messages are shed first; only when none is left is a new
/// message refused. An acknowledged QoS 1 message is never evicted: it leaves
/// only when delivered, expired, or purged by the operator.
///
/// The forwarder sees a committed row only after its completion has run
/// (`visibleThrough`), so whatever the completion registers (an `ack:
/// delivered` waiter) is in place before the row can be published.
public final class Outbox: Sendable {
    public typealias Completion = @Sendable (Result<Int64, OutboxError>) -> Void

    struct Pending: Sendable {
        var message: OutboundMessage
        var completion: Completion
    }

    /// What belongs to one upstream connection.
    struct Lane: Sendable {
        var volatile = VolatileQueue()
        /// Its latest committed rows, for the forwarder to publish from memory.
        var recent: RecentRows
        /// Acknowledged rows whose deletion is not committed yet (queued or
        /// in the running transaction).
        var unsettled = 0
        var connected = false
    }

    struct State: Sendable {
        var pending: [Pending] = []
        /// Rows to delete: delivered, or (`expired`) met expired by the forwarder.
        var acknowledged: [(id: Int64, size: Int, shard: Int, expired: Bool)] = []
        /// When the oldest deletion in `acknowledged` came (monotonic seconds).
        var acknowledgedSince: Double?
        /// When the oldest message in `pending` came (monotonic seconds).
        var pendingSince: Double?
        /// When the last commit ended (monotonic seconds).
        var lastCommitEnd = 0.0
        /// QoS 1 stored plus pending.
        var durable: OutboxCounts
        var lanes: [Lane]
        var nextSequence: UInt64 = 1
        var visibleThrough: Int64
        var accepting = true
        var started = false
        var stopRequested = false
        var finished = false
        var nextSweep: Date
        /// Whether the last commit succeeded, for `/readyz`.
        var writable = true
    }

    /// Largest group per transaction, so one burst cannot hold a transaction open for long.
    static let maxGroup = 2048
    /// How often expired rows are deleted even if nothing else is written.
    static let sweepInterval: TimeInterval = 30

    public let store: OutboxStore
    private let settings: OutboxSettings
    private let logger: Logger
    private let observer: GatewayObserver
    private let state: Guarded<State>
    private let onVisible: Guarded<Callback?>

    public init(store: OutboxStore, settings: OutboxSettings, logger: Logger, observer: GatewayObserver = NoObserver()) throws(OutboxError) {
        self.store = store
        self.settings = settings
        self.logger = logger
        self.observer = observer
        let lastID = try store.lastID()
        self.state = Guarded(State(
            durable: try store.counts(),
            lanes: Array(repeating: Lane(recent: RecentRows(coveredAfter: lastID)), count: store.shards),
            visibleThrough: lastID,
            nextSweep: Date()
        ))
        self.onVisible = Guarded(nil)
    }

    /// Called on the writer thread after new rows became visible, and after a
    /// QoS 0 message was queued: wakes the forwarder.
    public func whenNewMessages(_ action: @escaping @Sendable () -> Void) {
        onVisible.withLock { $0 = Callback(run: action) }
    }

    public func start() {
        state.update { $0.started = true }
        NamedThread.start("outbox-writer") { [self] in run() }
    }

    // MARK: Ingress side

    /// Admits a message or refuses it at once. QoS 1 messages complete on the
    /// writer thread after their commit; QoS 0 messages are queued now, and
    /// `onQueued` runs with their sequence number before the forwarder can
    /// see them (it runs under the outbox's lock: keep it short, and never
    /// call back into the outbox from it).
    public func submit(
        _ message: OutboundMessage,
        onQueued: ((UInt64) -> Void)? = nil,
        completion: @escaping Completion
    ) throws(OutboxRefusal) -> Admission {
        var shed = 0
        let result: Result<Admission, OutboxRefusal> = state.update { state in
            guard state.accepting else { return .failure(.stopping) }
            let size = message.storedSize
            let lane = ShardHash.shard(message.shardHash, of: state.lanes.count)
            if message.qos == .atMostOnce {
                if !state.lanes[lane].connected && settings.qos0WhenOffline == .drop { return .success(.dropped) }
                guard size <= settings.qos0MaxBytes else { return .failure(.full) }
                while state.volatileCount + 1 > settings.qos0MaxMessages || state.volatileBytes + size > settings.qos0MaxBytes {
                    state.shedOldestVolatile()
                    shed += 1
                }
            }
            while state.durable.messages + state.volatileCount + 1 > settings.maxMessages
                    || state.durable.bytes + state.volatileBytes + size > settings.maxBytes {
                guard state.shedOldestVolatile() else { return .failure(.full) }
                shed += 1
            }
            if message.qos.isDurable {
                state.durable.messages += 1
                state.durable.bytes += size
                if state.pending.isEmpty { state.pendingSince = MonotonicClock.now() }
                state.pending.append(Pending(message: message, completion: completion))
                return .success(.pending)
            } else {
                let sequence = state.nextSequence
                state.nextSequence += 1
                onQueued?(sequence)
                state.lanes[lane].volatile.append(VolatileEntry(sequence: sequence, message: message))
                return .success(.queued(sequence: sequence))
            }
        }
        if shed > 0 { observer.messagesShed(count: shed) }
        switch result {
        case .success(.dropped):
            observer.messagesDropped(reason: "offline", qos: .atMostOnce, count: 1)
            return .dropped
        case .success(let admission):
            if case .queued = admission {
                observer.messageAccepted(qos: .atMostOnce)
                onVisible.withLock { $0 }?.run()
            }
            return admission
        case .failure(let refusal):
            observer.messageRefused(reason: refusal == .full ? "full" : "stopping")
            throw refusal
        }
    }

    // MARK: Forwarder side

    /// The highest row ID the forwarder may read.
    public var visibleThrough: Int64 { state.withLock { $0.visibleThrough } }

    /// How many upstream connections messages are sharded across.
    public var shards: Int { store.shards }

    /// One connection's committed rows after `cursor`, oldest first, from
    /// memory; nil when some may be on disk only (read them with
    /// `store.fetch`). Only for that connection's forwarder: it forgets the
    /// rows up to `cursor`.
    public func takeCommitted(after cursor: Int64, limit: Int, shard: Int = 0) -> [StoredMessage]? {
        state.withLock { $0.lanes[shard].recent.take(after: cursor, limit: limit) }
    }

    /// The oldest queued QoS 0 messages of one connection, left in place.
    public func peekVolatile(limit: Int, shard: Int = 0) -> [VolatileEntry] {
        state.withLock { $0.lanes[shard].volatile.prefix(limit) }
    }

    /// Takes one connection's QoS 0 messages up to and including `sequence` off its queue.
    public func consumeVolatile(through sequence: UInt64, shard: Int = 0) {
        state.withLock { _ = $0.lanes[shard].volatile.removeThrough(sequence) }
    }

    /// Delivered (or expired, or undeliverable) rows, deleted with the next group.
    /// `expired`: the rows were not delivered but found expired; they are
    /// counted as expired when their deletion commits (unless the periodic
    /// sweep deleted them first).
    public func acknowledge(_ rows: [(id: Int64, size: Int)], shard: Int = 0, expired: Bool = false) {
        guard !rows.isEmpty else { return }
        state.update {
            if $0.acknowledged.isEmpty { $0.acknowledgedSince = MonotonicClock.now() }
            $0.acknowledged.append(contentsOf: rows.map { ($0.id, $0.size, shard, expired) })
            $0.lanes[shard].unsettled += rows.count
        }
    }

    /// A connection's acknowledged rows not yet deleted on disk. Its
    /// forwarder counts them against its window: after a crash they would be
    /// sent again, and at most a window's worth may be.
    public func unsettledDeletions(shard: Int = 0) -> Int {
        state.withLock { $0.lanes[shard].unsettled }
    }

    /// One connection's state. Losing it drops that connection's queued QoS 0
    /// messages unless `qos0_when_offline: keep`.
    public func setConnected(_ connected: Bool, shard: Int = 0) {
        let dropped = state.withLock { state -> Int in
            state.lanes[shard].connected = connected
            guard !connected && settings.qos0WhenOffline == .drop else { return 0 }
            return state.lanes[shard].volatile.removeAll().count
        }
        if dropped > 0 { observer.messagesDropped(reason: "offline", qos: .atMostOnce, count: dropped) }
    }

    /// Whether the last commit succeeded (a full or failing disk makes it false).
    public var isWritable: Bool { state.withLock { $0.writable } }

    /// How many upstream connections are up, as the forwarders last reported.
    public var connectedCount: Int { state.withLock { $0.lanes.filter(\.connected).count } }

    /// Whether every upstream connection is up.
    public var upstreamConnected: Bool { state.withLock { $0.lanes.allSatisfy(\.connected) } }

    /// Depth by QoS, with the oldest message's age.
    public func snapshot(now: Date = Date()) -> OutboxSnapshot {
        let (durable, volatileCount, volatileBytes, oldestVolatile) = state.withLock {
            ($0.durable, $0.volatileCount, $0.volatileBytes, $0.lanes.compactMap { $0.volatile.first?.message.receivedAt }.min())
        }
        let oldestDurable = durable.messages > 0 ? (try? store.oldestReceivedAt()) ?? nil : nil
        func age(_ date: Date?) -> Double { date.map { max(0, now.timeIntervalSince($0)) } ?? 0 }
        return OutboxSnapshot(
            qos0: .init(messages: volatileCount, bytes: volatileBytes, oldestAge: age(oldestVolatile)),
            qos1: .init(messages: durable.messages, bytes: durable.bytes, oldestAge: age(oldestDurable))
        )
    }

    /// QoS 1 messages stored or about to be.
    public var durableCounts: OutboxCounts { state.withLock { $0.durable } }

    // MARK: Lifecycle

    /// Refuses new messages from now on; those already submitted are still committed.
    public func stopAccepting() {
        state.update { $0.accepting = false }
    }

    /// Stops accepting, commits everything submitted or acknowledged so far,
    /// and returns once the writer thread has ended. Queued QoS 0 messages
    /// are lost, as QoS 0 allows.
    public func shutdown() {
        let started = state.update { state -> Bool in
            state.accepting = false
            state.stopRequested = true
            return state.started
        }
        if started {
            state.wait(until: { $0.finished }) { _ in }
        }
        let lost = state.withLock { state in
            state.lanes.indices.reduce(0) { $0 + state.lanes[$1].volatile.removeAll().count }
        }
        if lost > 0 {
            logger.notice("queued QoS 0 messages dropped at shutdown", metadata: ["outbox.qos0": "\(lost)"])
        }
    }

    // MARK: Writer thread

    private struct Work {
        var group: [Pending]
        var acknowledged: [(id: Int64, size: Int, shard: Int, expired: Bool)]
        var sweep: Bool
    }

    private func run() {
        while let work = nextWork() {
            commit(work)
        }
        state.update { $0.finished = true }
    }

    /// Waits for work or the next sweep; nil once stopping with nothing left.
    /// Deletions alone wait a little (`settleBatch`, `settleLinger`) for an
    /// insert to share its commit: under `sync: full` every commit is an
    /// fsync, and at a steady trickle the PUBACKs would otherwise double the
    /// commits (and the pages written).
    private func nextWork() -> Work? {
        let (sweepAt, knownSince, knownPendingSince) = state.withLock { ($0.nextSweep, $0.acknowledgedSince, $0.pendingSince) }
        var deadline = sweepAt
        let now = MonotonicClock.now()
        if let knownSince {
            deadline = min(deadline, Date().addingTimeInterval(knownSince + settings.settleLinger - now))
        }
        if let knownPendingSince {
            deadline = min(deadline, Date().addingTimeInterval(knownPendingSince + Self.commitLinger - now))
        }
        return state.wait(
            until: {
                self.insertsDue($0) || $0.stopRequested || Date() >= $0.nextSweep
                    || $0.acknowledgedSince != knownSince || $0.pendingSince != knownPendingSince || self.deletionsDue($0)
            },
            deadline: deadline
        ) { state -> Work? in
            let now = Date()
            let sweep = now >= state.nextSweep
            if sweep { state.nextSweep = now.addingTimeInterval(Self.sweepInterval) }
            let inserts = insertsDue(state) || (state.stopRequested && !state.pending.isEmpty)
            let deletions = deletionsDue(state) || (inserts && !state.acknowledged.isEmpty)
            if !inserts && !deletions && !sweep {
                // Nothing due yet: the caller comes back with a new deadline.
                let idle = state.pending.isEmpty && state.acknowledged.isEmpty
                return state.stopRequested && idle ? nil : Work(group: [], acknowledged: [], sweep: false)
            }
            var group: [Pending] = []
            if inserts || sweep {
                let count = min(state.pending.count, Self.maxGroup)
                group = Array(state.pending.prefix(count))
                state.pending.removeFirst(count)
                state.pendingSince = state.pending.isEmpty ? nil : MonotonicClock.now()
            }
            var acknowledged: [(id: Int64, size: Int, shard: Int, expired: Bool)] = []
            if deletions || sweep {
                acknowledged = state.acknowledged
                state.acknowledged.removeAll(keepingCapacity: true)
                state.acknowledgedSince = nil
            }
            return Work(group: group, acknowledged: acknowledged, sweep: sweep)
        }
    }

    /// Under `sync: full` while commits follow each other closely, new
    /// messages wait up to `commitLinger` for company, so one fsync serves
    /// more of them; a message after a quiet spell is committed at once.
    static let commitLinger = 0.001
    static let lingerGroup = 32

    /// Whether the pending messages should be committed now.
    private func insertsDue(_ state: State) -> Bool {
        guard !state.pending.isEmpty, let since = state.pendingSince else { return false }
        guard settings.sync == .full, state.pending.count < Self.lingerGroup else { return true }
        let now = MonotonicClock.now()
        // Busy: the last commit ended after these messages started waiting.
        let busy = state.lastCommitEnd >= since - Self.commitLinger
        return !busy || now >= since + Self.commitLinger
    }

    /// Whether the waiting deletions should be committed on their own now.
    private func deletionsDue(_ state: State) -> Bool {
        guard let since = state.acknowledgedSince, !state.acknowledged.isEmpty else { return false }
        return state.stopRequested || state.acknowledged.count >= settings.settleBatch
            || MonotonicClock.now() >= since + settings.settleLinger
    }

    private func commit(_ work: Work) {
        guard !work.group.isEmpty || !work.acknowledged.isEmpty || work.sweep else { return }
        let now = Date()
        if work.sweep {
            let expired = state.withLock { state in
                state.lanes.indices.reduce(0) { $0 + state.lanes[$1].volatile.removeExpired(at: now) }
            }
            if expired > 0 { observer.messagesExpired(qos: .atMostOnce, count: expired) }
        }
        let started = MonotonicClock.now()
        let result: Result<OutboxStore.CommitResult, OutboxError>
        do {
            result = .success(try store.commit(
                inserting: work.group.map(\.message),
                deleting: work.acknowledged.filter { !$0.expired }.map { ($0.id, $0.size) },
                expiring: work.acknowledged.filter(\.expired).map { ($0.id, $0.size) },
                expireBefore: work.sweep ? now : nil
            ))
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let commit):
            observer.commitFinished(messages: work.group.count, deletions: work.acknowledged.count, seconds: MonotonicClock.now() - started)
            state.update {
                $0.lastCommitEnd = MonotonicClock.now()
                $0.durable.messages -= commit.removed.messages + commit.expired.messages
                $0.durable.bytes -= commit.removed.bytes + commit.expired.bytes
                $0.writable = true
                for row in work.acknowledged { $0.lanes[row.shard].unsettled -= 1 }
            }
            if commit.expired.messages > 0 {
                observer.messagesExpired(qos: .atLeastOnce, count: commit.expired.messages)
                // Logged for the periodic sweep only: the forwarder meets
                // expired rows a batch at a time, which would be a line per commit.
                if work.sweep {
                    logger.info("expired messages dropped", metadata: ["outbox.expired": "\(commit.expired.messages)"])
                }
            }
            for (pending, id) in zip(work.group, commit.ids) {
                observer.messageAccepted(qos: pending.message.qos)
                pending.completion(.success(id))
            }
            if let last = commit.ids.last {
                let shards = store.shards
                state.update { state in
                    for (pending, id) in zip(work.group, commit.ids) {
                        let lane = ShardHash.shard(pending.message.shardHash, of: shards)
                        state.lanes[lane].recent.append(StoredMessage(id: id, message: pending.message))
                    }
                    state.visibleThrough = max(state.visibleThrough, last)
                }
            }
            // New rows, or window room freed by settled deletions.
            if !commit.ids.isEmpty || !work.acknowledged.isEmpty {
                onVisible.withLock { $0 }?.run()
            }
        case .failure(let error):
            logger.error("outbox commit failed", metadata: [
                "outbox.group": "\(work.group.count)",
                "outbox.acknowledged": "\(work.acknowledged.count)",
                "error": "\(error)",
            ])
            let bytes = work.group.reduce(0) { $0 + $1.message.storedSize }
            state.update {
                $0.writable = false
                $0.durable.messages -= work.group.count
                $0.durable.bytes -= bytes
                // Deletions are retried with the next group; delivered rows
                // left behind would only be sent again, never lost.
                $0.acknowledged.insert(contentsOf: work.acknowledged, at: 0)
                if !work.acknowledged.isEmpty && $0.acknowledgedSince == nil { $0.acknowledgedSince = MonotonicClock.now() }
            }
            for pending in work.group {
                pending.completion(.failure(error))
            }
            // Do not spin on a failing disk.
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}

extension Outbox.State {
    var volatileCount: Int { lanes.reduce(0) { $0 + $1.volatile.count } }
    var volatileBytes: Int { lanes.reduce(0) { $0 + $1.volatile.bytes } }

    /// Drops the oldest queued QoS 0 message across all connections; false
    /// when none is queued.
    @discardableResult
    mutating func shedOldestVolatile() -> Bool {
        var oldest: Int?
        for index in lanes.indices {
            guard let first = lanes[index].volatile.first else { continue }
            if oldest.map({ first.sequence < lanes[$0].volatile.first!.sequence }) ?? true { oldest = index }
        }
        guard let oldest else { return false }
        lanes[oldest].volatile.removeFirst()
        return true
    }
}
