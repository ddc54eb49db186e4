import Foundation
import GRDB
import GatewayCore

/// The durable queue: a SQLite database in WAL mode.
///
/// One writer (the `OutboxWriter` thread) inserts and deletes, in group
/// transactions; readers (the forwarder, `queue` commands) read concurrently
/// from WAL snapshots. Row IDs only grow (AUTOINCREMENT), so "everything after
/// row N" is a stable delivery cursor even when the table empties.
public final class Outbox: Sendable {
    public let path: String
    let pool: DatabasePool

    public init(path: String, sync: SyncMode) throws(OutboxError) {
        self.path = path
        var configuration = Configuration()
        configuration.label = "outbox"
        // The CLI's queue commands may read while the gateway writes.
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(sync == .full ? "FULL" : "NORMAL")")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try OutboxSchema.migrator.migrate(pool)
        } catch {
            throw Self.map(error)
        }
    }

    /// What one commit did.
    struct CommitResult {
        /// The new rows' IDs, in the order they were given.
        var ids: [Int64]
        /// Rows and bytes actually deleted.
        var removed: OutboxCounts
    }

    /// Inserts and deletes in one transaction.
    func commit(inserting: [OutboundMessage], deleting: [(id: Int64, size: Int)]) throws(OutboxError) -> CommitResult {
        do {
            return try pool.writeWithoutTransaction { db in
                var ids: [Int64] = []
                var removed = 0
                var removedBytes = 0
                ids.reserveCapacity(inserting.count)
                try db.inTransaction(.immediate) {
                    let insert = try db.cachedStatement(sql: OutboxSchema.insertSQL)
                    var addedBytes = 0
                    for message in inserting {
                        try insert.execute(arguments: [
                            message.topic, message.qos.rawValue, message.retain,
                            Data(message.payload), Self.millis(message.receivedAt), message.mapping,
                        ])
                        ids.append(db.lastInsertedRowID)
                        addedBytes += message.storedSize
                    }
                    let delete = try db.cachedStatement(sql: "DELETE FROM message WHERE id = ?")
                    for row in deleting {
                        try delete.execute(arguments: [row.id])
                        if db.changesCount > 0 {
                            removed += 1
                            removedBytes += row.size
                        }
                    }
                    try db.cachedStatement(sql: OutboxSchema.updateStatsSQL).execute(arguments: [
                        inserting.count - removed, addedBytes - removedBytes,
                    ])
                    return .commit
                }
                return CommitResult(ids: ids, removed: OutboxCounts(messages: removed, bytes: removedBytes))
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// Up to `limit` messages with IDs above `id`, oldest first.
    public func fetch(after id: Int64, limit: Int) throws(OutboxError) -> [StoredMessage] {
        do {
            return try pool.read { db in
                try Row.fetchAll(db, sql: OutboxSchema.fetchSQL, arguments: [id, limit]).map(Self.decode)
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// Messages and bytes queued, from the counters kept with every commit.
    public func counts() throws(OutboxError) -> OutboxCounts {
        do {
            return try pool.read { db in
                let row = try Row.fetchOne(db, sql: "SELECT messages, bytes FROM outbox_stats WHERE id = 1")
                return OutboxCounts(messages: row?["messages"] ?? 0, bytes: row?["bytes"] ?? 0)
            }
        } catch {
            throw Self.map(error)
        }
    }

    static func decode(_ row: Row) -> StoredMessage {
        let payload: Data = row["payload"]
        let qos: Int = row["qos"]
        let millis: Int64 = row["received_at"]
        return StoredMessage(
            id: row["id"],
            message: OutboundMessage(
                topic: row["topic"],
                qos: QoS(rawValue: qos) ?? .atLeastOnce,
                retain: row["retain"],
                payload: [UInt8](payload),
                receivedAt: Date(timeIntervalSince1970: Double(millis) / 1000),
                mapping: row["mapping"]
            )
        )
    }

    static func millis(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    static func map(_ error: Error) -> OutboxError {
        if let error = error as? OutboxError { return error }
        if let error = error as? DatabaseError {
            if error.resultCode == .SQLITE_FULL { return .diskFull }
            return .database(reason: error.message ?? "\(error.resultCode)")
        }
        return .database(reason: "\(error)")
    }
}
