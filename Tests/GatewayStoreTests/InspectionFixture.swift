import Foundation
import GRDB
@testable import GatewayStore

/// A state directory with an outbox built by the store's own migrations,
/// filled with plain SQL as the gateway's group commit would.
final class InspectionFixture {
    let paths: StatePaths
    /// Writes like the gateway's writer: WAL, one connection.
    private(set) var writer: DatabasePool?

    /// - Parameter database: false leaves the state directory without an
    ///   outbox (a gateway that never ran).
    init(database: Bool = true, lockFile: Bool = true) throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("iotgw-inspection-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        paths = StatePaths(directory: directory)
        if lockFile {
            _ = FileManager.default.createFile(atPath: paths.lock, contents: nil)
        }
        if database {
            let pool = try DatabasePool(path: paths.database)
            try OutboxSchema.migrator.migrate(pool)
            writer = pool
        }
    }

    deinit {
        try? writer?.close()
        try? FileManager.default.removeItem(atPath: paths.directory)
    }

    /// Inserts messages and adds them to `outbox_stats` in one transaction,
    /// as the gateway's group commit does.
    func insert(_ rows: [Row]) throws {
        try writer?.write { db in
            var bytes = 0
            for row in rows {
                try db.execute(
                    sql: """
                        INSERT INTO message (topic, qos, retain, payload, received_at, mapping, expires_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [row.topic, row.qos, row.retain, Data(row.payload), row.receivedAt, row.mapping, row.expiresAt]
                )
                bytes += row.topic.utf8.count + row.payload.count
            }
            try db.execute(
                sql: "UPDATE outbox_stats SET messages = messages + ?, bytes = bytes + ? WHERE id = 1",
                arguments: [rows.count, bytes]
            )
        }
    }

    /// `count` rows straight from a recursive CTE: 1,000 topics
    /// (`dt/sensors/dev<n>/temperature|humidity`), QoS 1, JSON payloads of
    /// about 20 bytes, one millisecond apart, every tenth with an expiry.
    func insertGenerated(_ count: Int, firstReceivedAt: Int64) throws {
        try writer?.write { db in
            try db.execute(
                sql: """
                    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
                    INSERT INTO message (topic, qos, retain, payload, received_at, mapping, expires_at)
                    SELECT 'dt/sensors/dev' || (i / 2 % 1000) || '/' || CASE i % 2 WHEN 0 THEN 'temperature' ELSE 'humidity' END,
                           1, 0, CAST('{"t":' || (i % 40) || '.5,"seq":' || i || '}' AS BLOB),
                           ? + i, 'generated', CASE WHEN i % 10 = 0 THEN ? + i + 600000 END
                    FROM n
                    """,
                arguments: [count, firstReceivedAt, firstReceivedAt]
            )
            try db.execute(sql: """
                UPDATE outbox_stats SET
                    messages = (SELECT count(*) FROM message),
                    bytes = (SELECT coalesce(sum(length(CAST(topic AS BLOB)) + length(payload)), 0) FROM message)
                WHERE id = 1
                """)
        }
    }

    /// Closes the writer, as a stopped gateway would have.
    func stopWriting() throws {
        try writer?.close()
        writer = nil
    }

    /// Reads with a fresh connection, bypassing the code under test.
    func scalar(_ sql: String) throws -> Int {
        let queue = try DatabaseQueue(path: paths.database)
        defer { try? queue.close() }
        return try queue.read { db in try Int.fetchOne(db, sql: sql) ?? -1 }
    }

    struct Row {
        var topic: String
        var qos: Int = 1
        var retain = false
        var payload: [UInt8] = Array("x".utf8)
        var receivedAt: Int64
        var mapping = "m"
        var expiresAt: Int64? = nil
    }
}
