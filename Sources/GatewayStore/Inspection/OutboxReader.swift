import Foundation
import GRDB

/// A read-only view of an outbox, safe beside a running gateway.
///
/// The connection is opened read-only, so nothing here can write; in WAL
/// mode a reader sees a consistent snapshot and never blocks the gateway's
/// writer. Each method reads inside one transaction, so the numbers it
/// returns agree with each other even while the gateway commits.
public final class OutboxReader: Sendable {
    public let paths: StatePaths
    private let database: DatabaseQueue

    /// Fails with `.noOutbox` when the gateway never created the database.
    public init(paths: StatePaths) throws(InspectionError) {
        self.paths = paths
        database = try InspectionDatabase.open(paths, readOnly: true)
    }

    /// Depth by QoS and by topic; `now` decides which expiries have passed.
    public func statistics(now: EpochMillis, topTopics limit: Int = 10) throws(InspectionError) -> OutboxStatistics {
        do {
            return try database.read { db in
                let counters = try Row.fetchOne(db, sql: InspectionSQL.counters)
                // GRDB's `read` is one transaction: the scans below see the
                // same snapshot as the counters.
                let byQoS = try Row.fetchAll(db, sql: InspectionSQL.byQoS, arguments: ["now": now.value]).map { row in
                    QoSDepth(
                        qos: row["qos"],
                        count: OutboxCounts(messages: row["messages"], bytes: row["bytes"]),
                        oldestReceivedAt: EpochMillis(row["oldest"] as Int64),
                        newestReceivedAt: EpochMillis(row["newest"] as Int64),
                        withExpiry: row["with_expiry"],
                        expired: row["expired"]
                    )
                }
                let topics = try Row.fetchAll(db, sql: InspectionSQL.topTopics, arguments: ["limit": limit])
                return OutboxStatistics(
                    counters: OutboxCounts(messages: counters?["messages"] ?? 0, bytes: counters?["bytes"] ?? 0),
                    byQoS: byQoS,
                    topTopics: topics.map { TopicDepth(topic: $0["topic"], count: OutboxCounts(messages: $0["messages"], bytes: $0["bytes"])) },
                    distinctTopics: topics.first?["topics"] ?? 0
                )
            }
        } catch {
            throw InspectionDatabase.map(error, path: paths.database)
        }
    }

    /// The `limit` oldest messages, in the order the gateway sends them.
    public func oldest(_ limit: Int) throws(InspectionError) -> [InspectedMessage] {
        do {
            return try database.read { db in
                try Row.fetchAll(db, sql: InspectionSQL.oldest, arguments: [limit]).map { row in
                    let payload: Data = row["payload"]
                    let expiresAt: Int64? = row["expires_at"]
                    return InspectedMessage(
                        id: row["id"], topic: row["topic"], qos: row["qos"], retain: row["retain"],
                        payload: [UInt8](payload), receivedAt: EpochMillis(row["received_at"] as Int64),
                        mapping: row["mapping"], expiresAt: expiresAt.map(EpochMillis.init)
                    )
                }
            }
        } catch {
            throw InspectionDatabase.map(error, path: paths.database)
        }
    }

    /// The `outbox_stats` row alone: no scan, so instant at any depth.
    public func counters() throws(InspectionError) -> OutboxCounts {
        do {
            return try database.read { db in
                let row = try Row.fetchOne(db, sql: InspectionSQL.counters)
                return OutboxCounts(messages: row?["messages"] ?? 0, bytes: row?["bytes"] ?? 0)
            }
        } catch {
            throw InspectionDatabase.map(error, path: paths.database)
        }
    }

    /// What `purge` would remove now (all messages when `filter` is nil).
    public func count(matching filter: TopicFilter?) throws(InspectionError) -> OutboxCounts {
        let selection = PurgeSelection(filter)
        do {
            return try database.read { db in try selection.tally(db).count }
        } catch {
            throw InspectionDatabase.map(error, path: paths.database)
        }
    }
}
