import Foundation

/// A routed message ready for the outbox: what will be published, and where.
public struct OutboundMessage: Sendable, Equatable {
    public var topic: String
    public var qos: QoS
    public var retain: Bool
    /// The bytes to publish: the request body, or the JSON envelope.
    public var payload: [UInt8]
    public var receivedAt: Date
    /// Name of the mapping that produced it (for stats and logs).
    public var mapping: String
    /// After this moment it is dropped instead of sent (the mapping's `expiry`).
    public var expiresAt: Date?
    /// `ShardHash` of the mapping's shard key: which connection carries it.
    public var shardHash: UInt64

    public init(
        topic: String, qos: QoS, retain: Bool, payload: [UInt8], receivedAt: Date, mapping: String,
        expiresAt: Date? = nil, shardHash: UInt64? = nil
    ) {
        self.topic = topic
        self.qos = qos
        self.retain = retain
        self.payload = payload
        self.receivedAt = receivedAt
        self.mapping = mapping
        self.expiresAt = expiresAt
        self.shardHash = shardHash ?? ShardHash.of(topic)
    }

    public func isExpired(at now: Date) -> Bool {
        expiresAt.map { $0 <= now } ?? false
    }

    /// Bytes the message counts against `outbox.max_bytes`.
    public var storedSize: Int { Self.storedSize(topic: topic, payloadBytes: payload.count) }

    /// Bytes a message counts against `outbox.max_bytes`: its topic (UTF-8)
    /// and its payload. The outbox's SQL says the same in `OutboxSchema.rowSizeSQL`.
    public static func storedSize(topic: String, payloadBytes: Int) -> Int {
        topic.utf8.count + payloadBytes
    }
}

/// MQTT quality of service the gateway publishes with.
public enum QoS: Int, Sendable, Hashable, Codable, Comparable {
    case atMostOnce = 0
    case atLeastOnce = 1
    /// Only under the `generic` profile; AWS IoT Core does not support it.
    case exactlyOnce = 2

    /// Whether the outbox keeps it on disk (QoS 1 and 2) rather than in memory.
    public var isDurable: Bool { self != .atMostOnce }

    public static func < (lhs: QoS, rhs: QoS) -> Bool { lhs.rawValue < rhs.rawValue }
}
