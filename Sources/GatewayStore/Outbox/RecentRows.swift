import DequeModule
import GatewayCore

/// The rows one connection committed lately, kept in memory so the
/// forwarder publishes them without reading them back from SQLite.
///
/// It holds every row of its shard with an ID above `coveredAfter`, in ID
/// order, up to a bound; past the bound the oldest are dropped and
/// `coveredAfter` moves up, so the forwarder reads those from disk instead.
/// Nothing is ever only here: every row is committed before it is added.
struct RecentRows: Sendable {
    // A forwarder that keeps up needs little more than its window ahead;
    // the bound only matters when it falls behind, and then per connection.
    static let maxMessages = 4096
    static let maxBytes = 2 << 20

    private var rows = Deque<StoredMessage>()
    private var bytes = 0
    /// Every row of this shard with a higher ID is held.
    private(set) var coveredAfter: Int64

    init(coveredAfter: Int64) {
        self.coveredAfter = coveredAfter
    }

    var count: Int { rows.count }

    mutating func append(_ row: StoredMessage) {
        rows.append(row)
        bytes += row.message.storedSize
        while count > Self.maxMessages || (bytes > Self.maxBytes && count > 1) {
            coveredAfter = dropFirst().id
        }
    }

    /// Up to `limit` rows with IDs above `cursor`, oldest first; nil when
    /// some of them may be on disk only. Rows up to `cursor` are forgotten:
    /// the forwarder's cursor never moves back.
    mutating func take(after cursor: Int64, limit: Int) -> [StoredMessage]? {
        guard cursor >= coveredAfter else { return nil }
        while let first = rows.first, first.id <= cursor { dropFirst() }
        return Array(rows.prefix(limit))
    }

    @discardableResult
    private mutating func dropFirst() -> StoredMessage {
        let row = rows.removeFirst()
        bytes -= row.message.storedSize
        return row
    }
}
