import GatewayCore
/// The stored messages of one QoS.
public struct QoSDepth: Sendable, Equatable {
    public var qos: Int
    public var count: OutboxCounts
    public var oldestReceivedAt: EpochMillis
    public var newestReceivedAt: EpochMillis
    /// Messages whose mapping set an `expiry`.
    public var withExpiry: Int
    /// Of those, the ones already past it (the gateway drops them before sending).
    public var expired: Int

    public init(qos: Int, count: OutboxCounts, oldestReceivedAt: EpochMillis, newestReceivedAt: EpochMillis, withExpiry: Int, expired: Int) {
        self.qos = qos
        self.count = count
        self.oldestReceivedAt = oldestReceivedAt
        self.newestReceivedAt = newestReceivedAt
        self.withExpiry = withExpiry
        self.expired = expired
    }
}

/// The stored messages of one topic.
public struct TopicDepth: Sendable, Equatable {
    public var topic: String
    public var count: OutboxCounts

    public init(topic: String, count: OutboxCounts) {
        self.topic = topic
        self.count = count
    }
}

/// What `queue stats` reports, all read from one snapshot of the database.
public struct OutboxStatistics: Sendable, Equatable {
    /// The `outbox_stats` row the gateway keeps in step with every commit
    /// (what its capacity checks use).
    public var counters: OutboxCounts
    /// Counted from the rows, by QoS, ascending.
    public var byQoS: [QoSDepth]
    /// The topics with the most messages (ties by name), at most the limit asked for.
    public var topTopics: [TopicDepth]
    /// How many different topics have messages stored.
    public var distinctTopics: Int

    public init(counters: OutboxCounts, byQoS: [QoSDepth], topTopics: [TopicDepth], distinctTopics: Int) {
        self.counters = counters
        self.byQoS = byQoS
        self.topTopics = topTopics
        self.distinctTopics = distinctTopics
    }

    /// Counted from the rows; equal to `counters` unless they drifted.
    public var counted: OutboxCounts {
        byQoS.reduce(.zero) { OutboxCounts(messages: $0.messages + $1.count.messages, bytes: $0.bytes + $1.count.bytes) }
    }

    public var oldestReceivedAt: EpochMillis? { byQoS.map(\.oldestReceivedAt).min() }
    public var newestReceivedAt: EpochMillis? { byQoS.map(\.newestReceivedAt).max() }
    public var withExpiry: Int { byQoS.reduce(0) { $0 + $1.withExpiry } }
    public var expired: Int { byQoS.reduce(0) { $0 + $1.expired } }
}

/// One stored message as `queue peek` shows it.
public struct InspectedMessage: Sendable, Equatable {
    public var id: Int64
    public var topic: String
    public var qos: Int
    public var retain: Bool
    public var payload: [UInt8]
    public var receivedAt: EpochMillis
    public var mapping: String
    public var expiresAt: EpochMillis?

    public init(id: Int64, topic: String, qos: Int, retain: Bool, payload: [UInt8], receivedAt: EpochMillis, mapping: String, expiresAt: EpochMillis?) {
        self.id = id
        self.topic = topic
        self.qos = qos
        self.retain = retain
        self.payload = payload
        self.receivedAt = receivedAt
        self.mapping = mapping
        self.expiresAt = expiresAt
    }

    /// Bytes it counts against `outbox.max_bytes`.
    public var storedSize: Int { OutboundMessage.storedSize(topic: topic, payloadBytes: payload.count) }
}
