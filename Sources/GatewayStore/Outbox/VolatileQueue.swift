import DequeModule
import Foundation
import GatewayCore

/// A QoS 0 message held in memory, numbered in acceptance order.
public struct VolatileEntry: Sendable, Equatable {
    public var sequence: UInt64
    public var message: OutboundMessage

    public init(sequence: UInt64, message: OutboundMessage) {
        self.sequence = sequence
        self.message = message
    }
}

/// The in-memory FIFO for QoS 0 messages. Not thread-safe: `Outbox` keeps it
/// inside its guarded state.
struct VolatileQueue {
    private var entries = Deque<VolatileEntry>()
    private(set) var bytes = 0

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    var first: VolatileEntry? { entries.first }

    mutating func append(_ entry: VolatileEntry) {
        entries.append(entry)
        bytes += entry.message.storedSize
    }

    @discardableResult
    mutating func removeFirst() -> VolatileEntry? {
        guard let entry = entries.popFirst() else { return nil }
        bytes -= entry.message.storedSize
        return entry
    }

    /// The first `limit` entries, without removing them.
    func prefix(_ limit: Int) -> [VolatileEntry] {
        Array(entries.prefix(limit))
    }

    /// Removes entries from the front up to and including `sequence`.
    mutating func removeThrough(_ sequence: UInt64) -> [VolatileEntry] {
        var removed: [VolatileEntry] = []
        while let entry = first, entry.sequence <= sequence {
            removed.append(entry)
            removeFirst()
        }
        return removed
    }

    mutating func removeAll() -> [VolatileEntry] {
        let removed = Array(entries)
        entries.removeAll()
        bytes = 0
        return removed
    }

    /// Removes every expired entry, wherever it is.
    mutating func removeExpired(at now: Date) -> Int {
        let before = count
        entries.removeAll { $0.message.isExpired(at: now) }
        bytes = entries.reduce(0) { $0 + $1.message.storedSize }
        return before - count
    }
}
