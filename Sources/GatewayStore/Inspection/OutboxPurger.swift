import Foundation
import GRDB

/// Deletes stored messages for `queue purge`.
///
/// Only with the gateway stopped: a running gateway has rows in flight and
/// keeps its own counters, and it is the outbox's only writer by design. The
/// purge holds the state directory's lock from start to end, so a gateway
/// started meanwhile refuses to start instead of reading a half-purged queue.
public enum OutboxPurger {
    /// Removes every message (or those whose topic matches `filter`) in one
    /// transaction, subtracting them from `outbox_stats`, and returns what
    /// it removed.
    ///
    /// One transaction, not batches: a purge is all or nothing, and SQLite
    /// removes 500,000 of 1,000,000 rows by filter in about a second here.
    public static func purge(_ paths: StatePaths, matching filter: TopicFilter?) throws(InspectionError) -> OutboxCounts {
        guard FileManager.default.fileExists(atPath: paths.database) else {
            throw .noOutbox(path: paths.database)
        }
        let lock = try StateLock.acquire(paths)
        // The connection closes (checkpointing the WAL) before the lock goes.
        defer { withExtendedLifetime(lock) {} }
        let database = try InspectionDatabase.open(paths, readOnly: false)
        defer { try? database.close() }
        let selection = PurgeSelection(filter)
        do {
            return try database.writeWithoutTransaction { db in
                var purged = OutboxCounts.zero
                try db.inTransaction(.immediate) {
                    let (topics, count) = try selection.tally(db)
                    purged = count
                    guard count.messages > 0 else { return .commit }
                    let deleted = try selection.delete(db, topics: topics)
                    // Nobody else can write (we hold the lock and the write
                    // transaction), so the count cannot differ; if it does,
                    // roll back rather than corrupt the counters.
                    guard deleted == count.messages else {
                        throw InspectionError.database(
                            path: paths.database,
                            reason: "deleted \(deleted) rows, expected \(count.messages); rolled back"
                        )
                    }
                    try db.execute(sql: InspectionSQL.subtractFromCounters, arguments: [count.messages, count.bytes])
                    return .commit
                }
                return purged
            }
        } catch {
            throw InspectionDatabase.map(error, path: paths.database)
        }
    }
}
