import Foundation
import GRDB
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Outbox schema upgrades")
struct OutboxMigrationTests {
    /// A queue written by the previous schema (full shard index) opens under
    /// the partial index with every row in place, and each connection reads
    /// its own rows in order, also through the rewritten queries.
    @Test func aV3QueueKeepsItsRowsUnderThePartialShardIndex() throws {
        let state = TemporaryState()
        defer { state.remove() }
        try FileManager.default.createDirectory(atPath: state.path, withIntermediateDirectories: true)
        let path = state.path + "/outbox.sqlite"
        do {
            let pool = try DatabasePool(path: path)
            try OutboxSchema.migrator.migrate(pool, upTo: "v3-shards")
            try pool.write { db in
                try db.execute(sql: "UPDATE outbox_meta SET value = 2 WHERE name = 'shards'")
                for index in 0..<6 {
                    try db.execute(
                        sql: """
                            INSERT INTO message (topic, qos, retain, payload, received_at, mapping, expires_at, shard_hash, shard)
                            VALUES (?, 1, 0, ?, 0, 'm', NULL, ?, ?)
                            """,
                        arguments: ["dt/\(index)", Data("p\(index)".utf8), index % 2, index % 2]
                    )
                }
            }
        }

        let store = try OutboxStore(path: path, sync: .normal, shards: 2)
        let first = try store.fetch(after: 0, limit: 10, shard: 0).map(\.message.topic)
        let second = try store.fetch(after: 0, limit: 10, shard: 1).map(\.message.topic)
        #expect(first == ["dt/0", "dt/2", "dt/4"])
        #expect(second == ["dt/1", "dt/3", "dt/5"])
        // Row IDs 1...6 follow dt/0...dt/5.
        #expect(try store.fetch(after: 4, limit: 10, shard: 1).map(\.message.topic) == ["dt/5"])
        #expect(try store.fetch(after: 1, limit: 1, shard: 0).map(\.message.topic) == ["dt/2"])

        let indexSQL = try store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'message_shard'")
        }
        #expect(indexSQL?.contains("WHERE shard <> 0") == true, "\(indexSQL ?? "no index")")
    }
}

@Suite("Outbox durability settings")
struct OutboxSyncTests {
    /// GRDB's pool sets synchronous = NORMAL when it opens; `sync: full` must
    /// still end up FULL on the connection that commits, or "power-loss-safe"
    /// would be a word only.
    @Test(arguments: [(SyncMode.full, 2), (SyncMode.normal, 1)])
    func theWriterCommitsWithTheConfiguredSync(sync: SyncMode, level: Int) throws {
        let state = TemporaryState()
        defer { state.remove() }
        try FileManager.default.createDirectory(atPath: state.path, withIntermediateDirectories: true)
        let store = try OutboxStore(path: state.path + "/outbox.sqlite", sync: sync)
        #expect(try store.synchronousLevel() == level)
    }
}
