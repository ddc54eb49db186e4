import GatewayCore

/// What `Outbox.submit` did with a message.
public enum Admission: Sendable, Equatable {
    /// QoS 1: it joins the next group commit; the completion follows.
    case pending
    /// QoS 0: it is queued in memory under this sequence number; no completion follows.
    case queued(sequence: UInt64)
    /// QoS 0 while disconnected under `qos0_when_offline: drop`: not kept.
    case dropped
}

/// Why the outbox refused a message at once.
public enum OutboxRefusal: Error, Sendable, Equatable {
    /// Capacity is reached and no QoS 0 message is left to shed.
    case full
    /// The disk is full: QoS 1 messages are refused until there is room again.
    case storageFull
    /// The gateway is shutting down.
    case stopping
}

/// The outbox's capacity and shedding policy: `max_messages` and
/// `max_bytes` count QoS 1 rows (stored or about to be) and QoS 0 entries
/// together. When full, the oldest QoS 0 entry (across connections) is shed
/// first; only when none is left is a message refused. A QoS 1 row is never
/// evicted: it leaves when delivered, expired or purged.
struct Capacity: Sendable {
    let limits: OutboxSettings
    /// QoS 1 stored plus pending.
    private(set) var durable: OutboxCounts

    init(limits: OutboxSettings, durable: OutboxCounts) {
        self.limits = limits
        self.durable = durable
    }

    /// What to do with `message` bound for `lanes[lane]`. On success the
    /// room is taken (QoS 1 counted, QoS 0 left to the caller to queue);
    /// `shed` counts the QoS 0 entries dropped to make room.
    mutating func admit(_ message: OutboundMessage, lane: Int, lanes: inout [LaneState], shed: inout Int) -> Result<Admission, OutboxRefusal> {
        let size = message.storedSize
        if message.qos == .atMostOnce {
            if !lanes[lane].connected && limits.qos0WhenOffline == .drop { return .success(.dropped) }
            guard size <= limits.qos0MaxBytes else { return .failure(.full) }
            while lanes.volatileCount + 1 > limits.qos0MaxMessages || lanes.volatileBytes + size > limits.qos0MaxBytes {
                lanes.shedOldestVolatile()
                shed += 1
            }
        }
        while durable.messages + lanes.volatileCount + 1 > limits.maxMessages
                || durable.bytes + lanes.volatileBytes + size > limits.maxBytes {
            guard lanes.shedOldestVolatile() else { return .failure(.full) }
            shed += 1
        }
        guard message.qos.isDurable else { return .success(.queued(sequence: 0)) }
        durable.messages += 1
        durable.bytes += size
        return .success(.pending)
    }

    /// Whether a batch fits whole, shedding every QoS 0 message if need be:
    /// a batch is admitted all together or not at all.
    func fits(messages count: Int, bytes: Int, largest: Int, qos: QoS) -> Bool {
        if qos == .atMostOnce, count > limits.qos0MaxMessages || bytes > limits.qos0MaxBytes || largest > limits.qos0MaxBytes {
            return false
        }
        return durable.messages + count <= limits.maxMessages && durable.bytes + bytes <= limits.maxBytes
    }

    /// Rows left the outbox (deleted, expired, or never committed).
    mutating func release(_ counts: OutboxCounts) {
        durable.messages -= counts.messages
        durable.bytes -= counts.bytes
    }
}

extension [LaneState] {
    var volatileCount: Int { reduce(0) { $0 + $1.volatile.count } }
    var volatileBytes: Int { reduce(0) { $0 + $1.volatile.bytes } }

    /// Drops the oldest queued QoS 0 message across all connections; false
    /// when none is queued.
    @discardableResult
    mutating func shedOldestVolatile() -> Bool {
        var oldest: Int?
        for index in indices {
            guard let first = self[index].volatile.first else { continue }
            if oldest.map({ first.sequence < self[$0].volatile.first!.sequence }) ?? true { oldest = index }
        }
        guard let oldest else { return false }
        self[oldest].volatile.removeFirst()
        return true
    }
}
