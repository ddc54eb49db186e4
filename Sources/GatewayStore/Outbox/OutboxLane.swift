import GatewayCore

/// One upstream connection's view of the outbox: the only way its
/// forwarder reads messages and hands them back. Each lane sees its own
/// shard and nothing else.
public final class OutboxLane: Sendable {
    public typealias SettledHandler = @Sendable (_ rows: Int) -> Void

    /// The connection (and shard) number.
    public let index: Int
    private let state: Guarded<OutboxState>
    private let store: OutboxStore
    private let observer: GatewayObserver
    private let onSettled = Guarded(SettledCallback())

    init(index: Int, state: Guarded<OutboxState>, store: OutboxStore, observer: GatewayObserver) {
        self.index = index
        self.state = state
        self.store = store
        self.observer = observer
    }

    /// Committed rows after `cursor`, oldest first, from memory; nil when
    /// some may be on disk only (then `backlog`). Rows up to `cursor` are
    /// forgotten: a forwarder's cursor never moves back.
    public func takeCommitted(after cursor: Int64, limit: Int) -> [StoredMessage]? {
        state.withLock { $0.lanes[index].recent.take(after: cursor, limit: limit) }
    }

    /// Committed rows after `cursor` read from disk.
    public func backlog(after cursor: Int64, limit: Int) throws(OutboxError) -> [StoredMessage] {
        let visible = state.withLock { $0.visibleThrough }
        return try store.fetch(after: cursor, through: visible, limit: limit, shard: index)
    }

    /// Rows by ID (a broker's transient refusal asks for them again); gone ones are left out.
    public func rows(ids: [Int64]) throws(OutboxError) -> [StoredMessage] {
        try store.fetch(ids: ids)
    }

    /// The oldest queued QoS 0 messages, left in place.
    public func peekVolatile(limit: Int) -> [VolatileEntry] {
        state.withLock { $0.lanes[index].volatile.prefix(limit) }
    }

    /// Takes the QoS 0 messages up to and including `sequence` off the queue.
    public func consumeVolatile(through sequence: UInt64) {
        state.withLock { _ = $0.lanes[index].volatile.removeThrough(sequence) }
    }

    /// Rows to delete with the next group commit: delivered, refused for
    /// good, or (`expired`) found expired, counted as expired when their
    /// deletion commits (unless the periodic sweep deleted them first).
    /// `whenSettled` hears when they are deleted on disk.
    public func acknowledge(_ rows: [(id: Int64, size: Int)], expired: Bool = false) {
        guard !rows.isEmpty else { return }
        let now = MonotonicClock.now()
        state.update { state in
            state.commits.delete(rows.map { .init(id: $0.id, size: $0.size, lane: index, expired: expired) }, now: now)
        }
    }

    /// Losing the connection drops its queued QoS 0 messages unless `qos0_when_offline: keep`.
    public func setConnected(_ connected: Bool) {
        let dropped = state.withLock { state -> Int in
            state.lanes[index].connected = connected
            guard !connected && state.capacity.limits.qos0WhenOffline == .drop else { return 0 }
            return state.lanes[index].volatile.removeAll().count
        }
        if dropped > 0 { observer.messagesDropped(reason: "offline", qos: .atMostOnce, count: dropped) }
    }

    /// Called on the writer thread with how many of this lane's acknowledged
    /// rows a commit deleted (or found already gone).
    public func whenSettled(_ handler: @escaping SettledHandler) {
        onSettled.withLock { $0.handler = handler }
    }

    func settled(_ rows: Int) {
        onSettled.withLock { $0.handler }?(rows)
    }
}

/// A closure kept in `Guarded` state (see the note on `Guarded`).
private struct SettledCallback: Sendable {
    var handler: OutboxLane.SettledHandler?
}
