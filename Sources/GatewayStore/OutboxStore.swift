import Foundation
import GRDB
import GatewayCore

/// The durable queue: a SQLite database in WAL mode.
///
/// One writer (the `Outbox`'s writer thread) inserts and deletes, in group
/// transactions; readers (the forwarder, `queue` commands) read concurrently
/// from WAL snapshots. Row IDs only grow (AUTOINCREMENT), so "everything after
/// row N" is a stable delivery cursor even when the table empties.
public final class OutboxStore: Sendable {
    public let path: String
    let pool: DatabasePool

    /// How many connections rows are sharded across.
    public let shards: Int

    /// The WAL found at open ended in a partial frame: a write cut short
    /// (power loss, or a crash mid-commit). SQLite drops it at open.
    public let foundTornWAL: Bool

    /// Opens (creating or migrating) the database. When `shards` differs from
    /// the count the queued rows were sharded for, they are re-sharded so
    /// each connection finds its own, in their original order.
    /// `walPages`: checkpoint the WAL once it holds this many pages (see
    /// `StorageBudget`); nil keeps SQLite's default of 1,000.
    public init(path: String, sync: SyncMode, shards: Int = 1, walPages: Int? = nil) throws(OutboxError) {
        self.path = path
        self.shards = max(1, shards)
        self.foundTornWAL = Self.walIsTorn(path + "-wal")
        var configuration = Configuration()
        configuration.label = "outbox"
        // The CLI's queue commands may read while the gateway writes.
        configuration.busyMode = .timeout(5)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // After the pool is open: opening it puts the writer into WAL mode
            // and sets synchronous = NORMAL, over anything set before.
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = \(sync == .full ? "FULL" : "NORMAL")")
                // Free pages can be handed back to the filesystem (a full
                // disk, see `releaseSpace`); settable only before any table.
                if try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") == 0 {
                    try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                }
                if let walPages {
                    try db.execute(sql: "PRAGMA wal_autocheckpoint = \(walPages)")
                    // A WAL that grew past this (a long read) is cut back
                    // after the next checkpoint, so its space returns.
                    try db.execute(sql: "PRAGMA journal_size_limit = \(2 * walPages * StorageBudget.pageSize)")
                }
            }
            try OutboxSchema.migrator.migrate(pool)
            try Self.enableIncrementalVacuumIfEmpty(pool)
            try Self.reshard(pool, to: self.shards)
        } catch {
            throw Self.mapOpening(error, path: path)
        }
    }

    /// At open, a damaged or unwritable file is named as such: the gateway
    /// then stops for good with a way out instead of restarting into it.
    static func mapOpening(_ error: Error, path: String) -> OutboxError {
        guard let database = error as? DatabaseError else { return map(error) }
        let reason = database.message ?? "\(database.resultCode)"
        switch database.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT: return .damaged(path: path, reason: reason)
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_IOERR: return .unwritable(path: path, reason: reason)
        default: return map(error)
        }
    }

    /// Whether the WAL's size is not its 32-byte header plus whole frames
    /// (a 24-byte header and a page each, the page size being in the WAL
    /// header): the last write was cut short.
    static func walIsTorn(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd(), size > 32 else { return false }
        try? handle.seek(toOffset: 8)
        guard let header = try? handle.read(upToCount: 4), header.count == 4 else { return false }
        let pageSize = header.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard pageSize >= 512 else { return true }
        return (size - 32) % (24 + pageSize) != 0
    }

    /// What one commit did.
    struct CommitResult {
        /// The new rows' IDs, in the order they were given.
        var ids: [Int64]
        /// Rows and bytes actually deleted as delivered.
        var removed: OutboxCounts
        /// Rows and bytes deleted because they expired.
        var expired = OutboxCounts.zero
    }

    /// Inserts, deletes delivered rows and the expired rows the forwarder
    /// met (`expiring`) and, when `expireBefore` is given,
    /// deletes every row whose expiry has passed, in one transaction.
    func commit(
        inserting: [OutboundMessage],
        deleting: [(id: Int64, size: Int)],
        expiring: [(id: Int64, size: Int)] = [],
        expireBefore: Date? = nil
    ) throws(OutboxError) -> CommitResult {
        do {
            return try pool.writeWithoutTransaction { db in
                var ids: [Int64] = []
                var removed = 0
                var removedBytes = 0
                var expired = OutboxCounts.zero
                ids.reserveCapacity(inserting.count)
                try HotStatements.immediateTransaction(in: db) {
                    let insert = try db.cachedStatement(sql: OutboxSchema.insertSQL)
                    var addedBytes = 0
                    for message in inserting {
                        try HotStatements.insert(message, shard: ShardHash.shard(message.shardHash, of: shards), with: insert, in: db)
                        ids.append(db.lastInsertedRowID)
                        addedBytes += message.storedSize
                    }
                    let delete = try db.cachedStatement(sql: "DELETE FROM message WHERE id = ?")
                    for row in deleting where try HotStatements.delete(id: row.id, with: delete, in: db) {
                        removed += 1
                        removedBytes += row.size
                    }
                    // Expired rows the forwarder met count only if still
                    // there: the periodic sweep may have deleted (and
                    // counted) them first.
                    for row in expiring where try HotStatements.delete(id: row.id, with: delete, in: db) {
                        expired.messages += 1
                        expired.bytes += row.size
                    }
                    if let expireBefore {
                        let sizes = try Int.fetchAll(db.cachedStatement(sql: OutboxSchema.expireSQL), arguments: [Self.millis(expireBefore)])
                        expired.messages += sizes.count
                        expired.bytes += sizes.reduce(0, +)
                    }
                    try HotStatements.updateStats(
                        messages: inserting.count - removed - expired.messages, bytes: addedBytes - removedBytes - expired.bytes,
                        with: db.cachedStatement(sql: OutboxSchema.updateStatsSQL), in: db
                    )
                }
                return CommitResult(ids: ids, removed: OutboxCounts(messages: removed, bytes: removedBytes), expired: expired)
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// Appends messages in one transaction and returns their IDs. For tools
    /// and tests that prepare a state directory; a running gateway writes
    /// only through its `Outbox`.
    public func append(_ messages: [OutboundMessage]) throws(OutboxError) -> [Int64] {
        try commit(inserting: messages, deleting: []).ids
    }

    /// Up to `limit` messages with IDs above `id` and at most `last`, oldest
    /// first; with `shard`, only that connection's.
    public func fetch(after id: Int64, through last: Int64 = .max, limit: Int, shard: Int? = nil) throws(OutboxError) -> [StoredMessage] {
        do {
            return try pool.read { db in
                if let shard, shards > 1 {
                    if shard == 0 {
                        return try Row.fetchAll(db.cachedStatement(sql: OutboxSchema.fetchFirstShardSQL), arguments: [id, last, limit])
                            .map(Self.decode)
                    }
                    return try Row.fetchAll(db.cachedStatement(sql: OutboxSchema.fetchShardSQL), arguments: [shard, id, last, limit])
                        .map(Self.decode)
                }
                return try Row.fetchAll(db.cachedStatement(sql: OutboxSchema.fetchSQL), arguments: [id, last, limit]).map(Self.decode)
            }
        } catch {
            throw Self.map(error)
        }
    }

    private static func reshard(_ pool: DatabasePool, to count: Int) throws {
        try pool.write { db in
            let current = try Int.fetchOne(db, sql: "SELECT value FROM outbox_meta WHERE name = 'shards'") ?? 1
            guard current != count else { return }
            try db.execute(
                sql: "UPDATE message SET shard = ((shard_hash % ?) + ?) % ?",
                arguments: [count, count, count]
            )
            try db.execute(sql: "UPDATE outbox_meta SET value = ? WHERE name = 'shards'", arguments: [count])
        }
    }

    /// The rows with these IDs that still exist, oldest first.
    public func fetch(ids: [Int64]) throws(OutboxError) -> [StoredMessage] {
        guard !ids.isEmpty else { return [] }
        do {
            return try pool.read { db in
                let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
                return try Row.fetchAll(
                    db, sql: OutboxSchema.fetchByIDSQL.replacingOccurrences(of: "%IDS%", with: marks),
                    arguments: StatementArguments(ids)
                ).map(Self.decode)
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// The highest row ID ever used (0 for a new database).
    public func lastID() throws(OutboxError) -> Int64 {
        do {
            return try pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'message'") ?? 0
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// When the oldest queued message was received, if any.
    public func oldestReceivedAt() throws(OutboxError) -> Date? {
        do {
            return try pool.read { db in
                try Int64.fetchOne(db, sql: "SELECT received_at FROM message ORDER BY id LIMIT 1")
                    .map { Date(timeIntervalSince1970: Double($0) / 1000) }
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// Copies the WAL into the database and empties it (frees its disk
    /// space); throws when the database cannot grow to take it.
    func checkpoint() throws(OutboxError) {
        do {
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        } catch {
            throw Self.map(error)
        }
    }

    /// Hands the pages of deleted rows back to the filesystem (incremental
    /// vacuum) and empties the WAL: on a full disk, what delivery freed
    /// becomes free space again.
    func releaseSpace() throws(OutboxError) {
        try checkpoint()
        do {
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA incremental_vacuum") }
        } catch {
            throw Self.map(error)
        }
        try checkpoint()
    }

    /// Databases made before incremental vacuum was turned on get it when
    /// they are empty (a VACUUM of an empty database is instant); a queued
    /// backlog is never rewritten at start-up.
    private static func enableIncrementalVacuumIfEmpty(_ pool: DatabasePool) throws {
        try pool.writeWithoutTransaction { db in
            guard try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") != 2 else { return }
            guard try Int.fetchOne(db, sql: "SELECT messages FROM outbox_stats WHERE id = 1") == 0 else { return }
            try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
            try db.execute(sql: "VACUUM")
        }
    }

    /// The writer's `PRAGMA synchronous`: 2 under `sync: full`, 1 under `normal`.
    func synchronousLevel() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
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

    /// Decodes a row of the fetch queries, whose columns come in this order:
    /// id, topic, qos, retain, payload, received_at, mapping, expires_at,
    /// shard_hash. By index: a name lookup costs a case-insensitive compare.
    static func decode(_ row: Row) -> StoredMessage {
        let payload: Data = row[4]
        let qos: Int = row[2]
        let millis: Int64 = row[5]
        let expires: Int64? = row[7]
        let shardHash: Int64 = row[8]
        return StoredMessage(
            id: row[0],
            message: OutboundMessage(
                topic: row[1],
                qos: QoS(rawValue: qos) ?? .atLeastOnce,
                retain: row[3],
                payload: [UInt8](payload),
                receivedAt: Date(timeIntervalSince1970: Double(millis) / 1000),
                mapping: row[6],
                expiresAt: expires.map { Date(timeIntervalSince1970: Double($0) / 1000) },
                shardHash: UInt64(bitPattern: shardHash)
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
