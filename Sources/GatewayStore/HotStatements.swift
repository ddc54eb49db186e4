import GRDB
import GRDBSQLite
import GatewayCore

/// The insert and the delete that every message costs, bound and stepped
/// through SQLite's C API: GRDB's `StatementArguments` allocate an array of
/// existentials per call, which was a measurable part of the writer's time.
/// Only for statements the writer prepared with `cachedStatement` and runs
/// inside its own transaction.
enum HotStatements {
    /// SQLITE_TRANSIENT, a macro Swift does not import: SQLite copies the value.
    private static var transient: sqlite3_destructor_type {
        unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    }

    /// Runs `body` between BEGIN IMMEDIATE and COMMIT, both cached: GRDB's
    /// `inTransaction` prepares the two statements anew on every call,
    /// which was about 7 % of the writer thread. Rolls back when the body
    /// or the commit throws.
    static func immediateTransaction(in db: Database, _ body: () throws -> Void) throws {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
        do {
            try body()
            try db.cachedStatement(sql: "COMMIT").execute()
        } catch {
            // A failed COMMIT may have ended the transaction already.
            if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK") }
            throw error
        }
    }

    /// Runs `OutboxSchema.insertSQL` for one message.
    static func insert(_ message: OutboundMessage, shard: Int, with statement: Statement, in db: Database) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        sqlite3_bind_text(handle, 1, message.topic, -1, transient)
        sqlite3_bind_int(handle, 2, Int32(message.qos.rawValue))
        sqlite3_bind_int(handle, 3, message.retain ? 1 : 0)
        if message.payload.isEmpty {
            // A nil pointer would bind NULL, which the NOT NULL column refuses.
            sqlite3_bind_zeroblob(handle, 4, 0)
        } else {
            message.payload.withUnsafeBytes { bytes in
                _ = sqlite3_bind_blob(handle, 4, bytes.baseAddress, Int32(bytes.count), transient)
            }
        }
        sqlite3_bind_int64(handle, 5, OutboxStore.millis(message.receivedAt))
        sqlite3_bind_text(handle, 6, message.mapping, -1, transient)
        if let expiresAt = message.expiresAt {
            sqlite3_bind_int64(handle, 7, OutboxStore.millis(expiresAt))
        } else {
            sqlite3_bind_null(handle, 7)
        }
        sqlite3_bind_int64(handle, 8, Int64(bitPattern: message.shardHash))
        sqlite3_bind_int64(handle, 9, Int64(shard))
        try step(handle, db)
    }

    /// Runs `DELETE FROM message WHERE id = ?`; true when a row was deleted.
    static func delete(id: Int64, with statement: Statement, in db: Database) throws -> Bool {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        sqlite3_bind_int64(handle, 1, id)
        try step(handle, db)
        return sqlite3_changes(db.sqliteConnection) > 0
    }

    /// Runs `OutboxSchema.updateStatsSQL`: adds the commit's net change.
    static func updateStats(messages: Int, bytes: Int, with statement: Statement, in db: Database) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        sqlite3_bind_int64(handle, 1, Int64(messages))
        sqlite3_bind_int64(handle, 2, Int64(bytes))
        try step(handle, db)
    }

    private static func step(_ handle: SQLiteStatement, _ db: Database) throws {
        let code = sqlite3_step(handle)
        // Reset now, so the statement holds no read position between commits.
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }
}
