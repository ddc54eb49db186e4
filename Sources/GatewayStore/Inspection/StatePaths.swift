import Foundation

/// Where the gateway keeps its files inside its state directory: the one
/// place their names are written. `StateDirectory` (the running gateway,
/// which takes the lock) and the operator commands (which must find the
/// files without taking it) both ask here.
public struct StatePaths: Sendable, Equatable {
    /// The state directory (`gateway.state_dir`).
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The outbox database, `<state_dir>/outbox.sqlite`.
    public var database: String { (directory as NSString).appendingPathComponent("outbox.sqlite") }

    /// Disk space held back for deleting delivered rows on a full disk,
    /// `<state_dir>/reserve` (see `StorageBudget`).
    public var reserve: String { (directory as NSString).appendingPathComponent("reserve") }

    /// The outbox's SQLite files: the database, its WAL and its shared-memory index.
    public var databaseFiles: [String] { [database, database + "-wal", database + "-shm"] }

    /// Commands kept for devices that were not listening, and the command
    /// filters the gateway follows, `<state_dir>/commands.sqlite`.
    public var commands: String { (directory as NSString).appendingPathComponent("commands.sqlite") }

    /// The file a running gateway holds an exclusive `flock` on, `<state_dir>/lock`.
    public var lock: String { (directory as NSString).appendingPathComponent("lock") }
}
