import GRDB

/// The outbox's tables and the SQL run on every commit.
enum OutboxSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE message (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    topic TEXT NOT NULL,
                    qos INTEGER NOT NULL,
                    retain INTEGER NOT NULL,
                    payload BLOB NOT NULL,
                    received_at INTEGER NOT NULL,  -- milliseconds since 1970
                    mapping TEXT NOT NULL,
                    expires_at INTEGER             -- milliseconds since 1970; NULL: never
                );
                -- Kept in step by every commit so start-up never scans the queue.
                CREATE TABLE outbox_stats (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    messages INTEGER NOT NULL,
                    bytes INTEGER NOT NULL
                );
                INSERT INTO outbox_stats (id, messages, bytes) VALUES (1, 0, 0);
                """)
        }
        migrator.registerMigration("v2-expiry-index") { db in
            // The expiry sweep looks only at rows that can expire.
            try db.execute(sql: "CREATE INDEX message_expiry ON message(expires_at) WHERE expires_at IS NOT NULL")
        }
        migrator.registerMigration("v3-shards") { db in
            // shard_hash is ShardHash of the mapping's shard key; shard is it
            // modulo the connection count the rows were last sharded for.
            try db.execute(sql: """
                ALTER TABLE message ADD COLUMN shard_hash INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE message ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX message_shard ON message(shard, id);
                CREATE TABLE outbox_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO outbox_meta (name, value) VALUES ('shards', 1);
                """)
        }
        migrator.registerMigration("v4-partial-shard-index") { db in
            // Only rows of connections other than the first need the index;
            // a single-connection gateway (the common case) then maintains no
            // second index per message: less work and fewer pages written per
            // commit. The first connection's rows are found along the row IDs.
            try db.execute(sql: """
                DROP INDEX message_shard;
                CREATE INDEX message_shard ON message(shard, id) WHERE shard <> 0;
                """)
        }
        return migrator
    }

    static let insertSQL = """
        INSERT INTO message (topic, qos, retain, payload, received_at, mapping, expires_at, shard_hash, shard)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    static let updateStatsSQL = """
        UPDATE outbox_stats SET messages = messages + ?, bytes = bytes + ? WHERE id = 1
        """

    /// One connection's rows, for connections after the first: the literal
    /// `shard <> 0` lets SQLite use the partial index.
    static let fetchShardSQL = """
        SELECT id, topic, qos, retain, payload, received_at, mapping, expires_at, shard_hash
        FROM message WHERE shard = ? AND shard <> 0 AND id > ? AND id <= ? ORDER BY id LIMIT ?
        """

    /// The first connection's rows, along the row IDs.
    static let fetchFirstShardSQL = """
        SELECT id, topic, qos, retain, payload, received_at, mapping, expires_at, shard_hash
        FROM message WHERE shard = 0 AND id > ? AND id <= ? ORDER BY id LIMIT ?
        """

    static let fetchByIDSQL = """
        SELECT id, topic, qos, retain, payload, received_at, mapping, expires_at, shard_hash
        FROM message WHERE id IN (%IDS%) ORDER BY id
        """

    static let expireSQL = """
        DELETE FROM message WHERE expires_at IS NOT NULL AND expires_at <= ?
        RETURNING \(rowSizeSQL) AS size
        """

    /// `OutboundMessage.storedSize` in SQL. `length()` of TEXT counts
    /// characters, so the topic is measured as a BLOB.
    static let rowSizeSQL = "length(CAST(topic AS BLOB)) + length(payload)"

    static let fetchSQL = """
        SELECT id, topic, qos, retain, payload, received_at, mapping, expires_at, shard_hash
        FROM message WHERE id > ? AND id <= ? ORDER BY id LIMIT ?
        """
}
