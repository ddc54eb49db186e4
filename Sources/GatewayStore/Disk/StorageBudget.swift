/// How the outbox fits the filesystem it lives on, worked out from the free
/// space when the gateway starts.
///
/// On a full disk SQLite cannot delete anything: a DELETE appends to the
/// WAL, and the WAL cannot be checkpointed into a database file that cannot
/// grow. Three things keep that from happening, and undo it when something
/// else fills the disk:
/// - the WAL is checkpointed early enough (`walPages`) that it stays a
///   small share of the disk;
/// - a reserve file (`reserveBytes`, at least twice the WAL's share) is
///   kept in the state directory and given up when a commit fails for want
///   of space, so the checkpoint and the deletions of delivered rows can go
///   through;
/// - `outbox.max_bytes` is lowered, with a warning, when the disk could not
///   hold that much (`maxBytes`), so the queue refuses new messages as full
///   before the disk is.
public struct StorageBudget: Sendable, Equatable {
    /// SQLite's page size (its default, which the outbox keeps).
    public static let pageSize = 4096
    /// Disk bytes a queued message takes for each byte of topic and payload
    /// (`max_bytes` counts those): the row's other columns, the index, page
    /// slack. Measured on the outbox: about 1.2 for 200-byte readings and
    /// more for tiny ones; 2 leaves room for both.
    public static let overhead = 2

    /// `PRAGMA wal_autocheckpoint`: SQLite's default (1,000 pages) on large
    /// disks, less on small ones.
    public let walPages: Int
    public let reserveBytes: Int
    /// The `max_bytes` in force: the configured one, or less when the disk is small.
    public let maxBytes: Int
    /// Whether `maxBytes` is below the configured value.
    public let lowered: Bool

    /// - Parameters:
    ///   - freeBytes: free space for the gateway's user on the state directory's filesystem.
    ///   - usedBytes: what the outbox's files already take (they count as room for the outbox).
    ///   - configuredMaxBytes: `outbox.max_bytes`.
    public init(freeBytes: Int, usedBytes: Int, configuredMaxBytes: Int) {
        let room = max(0, freeBytes + usedBytes)
        let walBytes = min(1000 * Self.pageSize, max(64 * Self.pageSize, room / 16))
        walPages = walBytes / Self.pageSize
        reserveBytes = 2 * walBytes
        // The reserve, a WAL at its checkpoint size and the transaction
        // that overruns it come out of the room first.
        let forRows = max(0, room - reserveBytes - 2 * walBytes) / Self.overhead
        maxBytes = min(configuredMaxBytes, max(forRows, 64 * 1024))
        lowered = maxBytes < configuredMaxBytes
    }
}
