import DequeModule
import GatewayStore

/// Backlog rows read from SQLite ahead of a forwarder's window, oldest
/// first. A window refills a few slots at a time as PUBACKs come back;
/// reading those few from SQLite each time (a read transaction and a query)
/// cost more than the rows, so they are read `batch` at a time. They are
/// committed and change only by being deleted after delivery or expiry, both
/// of which the publishing path copes with.
struct ReadAhead {
    static let batch = 512

    private var rows = Deque<StoredMessage>()

    var count: Int { rows.count }
    var lastID: Int64? { rows.last?.id }

    mutating func drop(through cursor: Int64) {
        while let first = rows.first, first.id <= cursor { rows.removeFirst() }
    }

    mutating func append(_ more: [StoredMessage]) {
        rows.append(contentsOf: more)
    }

    func prefix(_ limit: Int) -> [StoredMessage] {
        Array(rows.prefix(limit))
    }
}
