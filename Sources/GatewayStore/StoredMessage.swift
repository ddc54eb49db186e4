import GatewayCore

/// A message as the outbox holds it: its row ID orders delivery.
public struct StoredMessage: Sendable, Equatable {
    public var id: Int64
    public var message: OutboundMessage

    public init(id: Int64, message: OutboundMessage) {
        self.id = id
        self.message = message
    }
}

/// Why the outbox could not be opened or written.
public enum OutboxError: Error, Sendable, CustomStringConvertible {
    /// The state directory cannot be created or written.
    case stateDirectory(path: String, reason: String)
    /// Another process holds the state directory.
    case locked(path: String)
    /// SQLite refused an operation.
    case database(reason: String)
    /// The disk is full.
    case diskFull
    /// The database file is not a database, or is corrupt.
    case damaged(path: String, reason: String)
    /// The database cannot be opened for writing (read-only filesystem, permissions).
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .stateDirectory(let path, let reason): return "state directory \(path): \(reason)"
        case .locked(let path): return "state directory \(path) is in use by another iot-gateway process"
        case .database(let reason): return "outbox database: \(reason)"
        case .diskFull: return "outbox database: disk is full"
        case .damaged(let path, let reason): return "outbox database \(path) is damaged: \(reason)"
        case .unwritable(let path, let reason): return "outbox database \(path) cannot be written: \(reason)"
        }
    }
}

/// A number of messages and the bytes they count against `outbox.max_bytes`
/// (topic plus payload): the outbox's depth, or a part of it.
public struct OutboxCounts: Sendable, Equatable {
    public var messages: Int
    public var bytes: Int

    public init(messages: Int, bytes: Int) {
        self.messages = messages
        self.bytes = bytes
    }

    public static let zero = OutboxCounts(messages: 0, bytes: 0)
}

/// Names a queued message: a QoS 1 row, or a QoS 0 entry in memory.
public enum MessageKey: Hashable, Sendable {
    case row(Int64)
    case volatile(UInt64)
}
