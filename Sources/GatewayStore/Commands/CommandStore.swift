import Foundation
import GatewayCore
import GRDB

/// Why the command store failed.
public struct CommandStoreError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "commands database \(path): \(reason)" }
}

/// Commands kept for devices that were not listening when they arrived, and
/// the command filters the gateway follows, so both survive a restart. Its
/// own SQLite file beside the outbox: a few small rows a minute, written by
/// the downlink thread alone, never in the way of the outbox's group commits.
public final class CommandStore: Sendable {
    /// A filter the gateway subscribes to on one connection: a device's
    /// commands (with how they are kept), or a shadow's answers or deltas.
    /// Recorded because the broker keeps a persistent session's
    /// subscriptions across a restart: the gateway must know them to stay
    /// under the quota and to drop them.
    public struct Followed: Sendable, Equatable {
        public var filter: String
        public var connection: Int
        /// Nil for a shadow filter.
        public var mailbox: Mailbox?

        public init(filter: String, connection: Int, mailbox: Mailbox? = nil) {
            self.filter = filter
            self.connection = connection
            self.mailbox = mailbox
        }
    }

    private let queue: DatabaseQueue
    public let path: String

    public init(path: String) throws(CommandStoreError) {
        self.path = path
        var configuration = Configuration()
        configuration.label = "commands"
        configuration.busyMode = .timeout(5)
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            try Self.migrator.migrate(queue)
        } catch {
            throw CommandStoreError(path: path, reason: "\(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE kept (
                    id INTEGER PRIMARY KEY,
                    filter TEXT NOT NULL,
                    topic TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    received_at REAL NOT NULL,
                    expires_at REAL NOT NULL
                );
                CREATE INDEX kept_by_filter ON kept (filter, received_at, id);
                CREATE TABLE followed (
                    filter TEXT PRIMARY KEY,
                    connection INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    keep INTEGER NOT NULL,
                    expiry REAL NOT NULL,
                    format TEXT NOT NULL
                );
                """)
        }
        return migrator
    }

    /// GRDB's errors as this store's own.
    private func run<T>(_ body: () throws -> T) throws(CommandStoreError) -> T {
        do {
            return try body()
        } catch {
            throw CommandStoreError(path: path, reason: "\(error)")
        }
    }

    /// Keeps a command for its mailbox, dropping the oldest beyond `keep`;
    /// returns how many were dropped (the command itself when `keep` is 0).
    @discardableResult
    public func keep(_ command: DeviceCommand, in mailbox: Mailbox) throws(CommandStoreError) -> Int {
        guard mailbox.keep > 0 else { return 1 }
        return try run {
            try queue.write { db in
                try db.execute(
                    sql: "INSERT INTO kept (filter, topic, payload, received_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [mailbox.filter, command.topic, Data(command.payload), command.receivedAt, command.receivedAt + mailbox.expiry]
                )
                try db.execute(
                    sql: """
                        DELETE FROM kept WHERE filter = ? AND id NOT IN
                            (SELECT id FROM kept WHERE filter = ? ORDER BY received_at DESC, id DESC LIMIT ?)
                        """,
                    arguments: [mailbox.filter, mailbox.filter, mailbox.keep]
                )
                return db.changesCount
            }
        }
    }

    /// Takes the oldest command still valid at `now` out of the mailbox.
    public func take(from filter: String, now: Double) throws(CommandStoreError) -> DeviceCommand? {
        try run {
            try queue.write { db in
                try db.execute(sql: "DELETE FROM kept WHERE filter = ? AND expires_at <= ?", arguments: [filter, now])
                guard let row = try Row.fetchOne(
                    db, sql: "SELECT id, topic, payload, received_at FROM kept WHERE filter = ? ORDER BY received_at, id LIMIT 1", arguments: [filter]
                ) else { return nil }
                try db.execute(sql: "DELETE FROM kept WHERE id = ?", arguments: [row["id"] as Int64])
                return DeviceCommand(topic: row["topic"], payload: Array(row["payload"] as Data), receivedAt: row["received_at"])
            }
        }
    }

    /// Puts back a command a device did not acknowledge: commands are handed
    /// out by when they arrived, so it takes its old place among the rest
    /// (and, like any, goes first when the mailbox holds more than `keep`).
    public func putBack(_ command: DeviceCommand, in mailbox: Mailbox) throws(CommandStoreError) {
        try keep(command, in: mailbox)
    }

    public func count(in filter: String) throws(CommandStoreError) -> Int {
        try run {
            try queue.read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM kept WHERE filter = ?", arguments: [filter]) ?? 0
            }
        }
    }

    /// Drops what expired; returns how many.
    @discardableResult
    public func purgeExpired(now: Double) throws(CommandStoreError) -> Int {
        try run {
            try queue.write { db in
                try db.execute(sql: "DELETE FROM kept WHERE expires_at <= ?", arguments: [now])
                return db.changesCount
            }
        }
    }

    public func follow(_ followed: Followed) throws(CommandStoreError) {
        try run {
            try queue.write { db in
                let mailbox = followed.mailbox
                try db.execute(
                    sql: "INSERT OR REPLACE INTO followed (filter, connection, kind, keep, expiry, format) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        followed.filter, followed.connection, mailbox == nil ? "shadow" : "commands", mailbox?.keep ?? 0,
                        mailbox?.expiry ?? 0, (mailbox?.format ?? .raw).rawValue,
                    ]
                )
            }
        }
    }

    /// No longer followed: a command filter's kept commands go too (nothing would deliver them).
    public func unfollow(_ filter: String) throws(CommandStoreError) {
        try run {
            try queue.write { db in
                try db.execute(sql: "DELETE FROM followed WHERE filter = ?", arguments: [filter])
                try db.execute(sql: "DELETE FROM kept WHERE filter = ?", arguments: [filter])
            }
        }
    }

    public func followedFilters() throws(CommandStoreError) -> [Followed] {
        try run {
            try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT filter, connection, kind, keep, expiry, format FROM followed").map { row in
                    let filter: String = row["filter"]
                    let kind: String = row["kind"]
                    return Followed(
                        filter: filter, connection: row["connection"],
                        mailbox: kind != "commands" ? nil : Mailbox(
                            filter: filter, keep: row["keep"], expiry: row["expiry"],
                            format: CommandBinding.Format(rawValue: row["format"]) ?? .raw
                        )
                    )
                }
            }
        }
    }
}
