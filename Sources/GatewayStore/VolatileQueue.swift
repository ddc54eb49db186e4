import Foundation
import GatewayCore

/// A QoS 0 message held in memory, numbered in acceptance order.
public struct VolatileEntry: Sendable, Equatable {
    public var sequence: UInt64
    public var message: OutboundMessage
}

/// The in-memory FIFO for QoS 0 messages. Not thread-safe: `Outbox` keeps it
/// inside its guarded state.
struct VolatileQueue {
    private var entries: [VolatileEntry] = []
    private var head = 0
    private(set) var bytes = 0

    var count: Int { entries.count - head }
    var isEmpty: Bool { head == entries.count }
    var first: VolatileEntry? { isEmpty ? nil : entries[head] }

    mutating func append(_ entry: VolatileEntry) {
        entries.append(entry)
        bytes += entry.message.storedSize
    }

    @discardableResult
    mutating func removeFirst() -> VolatileEntry? {
        guard !isEmpty else { return nil }
        let entry = entries[head]
        head += 1
        bytes -= entry.message.storedSize
        compactIfWorthIt()
        return entry
    }

    /// The first `limit` entries, without removing them.
    func prefix(_ limit: Int) -> ArraySlice<VolatileEntry> {
        entries[head..<min(entries.count, head + limit)]
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
        let removed = Array(entries[head...])
        entries.removeAll(keepingCapacity: false)
        head = 0
        bytes = 0
        return removed
    }

    /// Removes every expired entry, wherever it is.
    mutating func removeExpired(at now: Date) -> Int {
        let before = count
        let kept = entries[head...].filter { !$0.message.isExpired(at: now) }
        entries = Array(kept)
        head = 0
        bytes = kept.reduce(0) { $0 + $1.message.storedSize }
        return before - count
    }

    /// Keeps the array from growing forever as the head advances.
    private mutating func compactIfWorthIt() {
        if head > 1024 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }
}
