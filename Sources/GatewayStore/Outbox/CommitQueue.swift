import GatewayCore

/// The work waiting for the writer thread and when it is due: messages to
/// insert (grouped, so one commit and one fsync serve many) and rows to
/// delete (batched, riding along with inserts when there are any). Pure
/// timing decisions on a monotonic `now`, so they are tested without threads.
struct CommitQueue: Sendable {
    struct Pending: Sendable {
        var message: OutboundMessage
        var completion: Outbox.Completion
        /// How many messages of the same batch follow this one: a group
        /// never ends inside a batch, so a batch is one transaction.
        var batchRest = 0
    }

    struct Deletion: Sendable, Equatable {
        var id: Int64
        var size: Int
        var lane: Int
        /// Not delivered but expired: counted as expired when the deletion commits.
        var expired: Bool
    }

    struct Work: Sendable {
        var group: [Pending]
        var deletions: [Deletion]
        /// Also delete every expired row and sweep expired QoS 0 entries.
        var sweep: Bool
    }

    /// Largest group per transaction, so one burst cannot hold a transaction open for long.
    static let maxGroup = 2048
    /// How often expired rows are deleted even if nothing else is written.
    static let sweepInterval = 30.0
    /// While commits follow each other closely, new messages wait up to
    /// `commitLinger` for company, so one commit (and under `sync: full` one
    /// fsync) serves more of them: each commit costs its BEGIN, its WAL
    /// write, its answers and a wake-up of the CoAP and forwarder threads
    /// whatever its size. A message after a quiet spell is committed at once.
    static let commitLinger = 0.001
    static let lingerGroup = 32

    let sync: SyncMode
    /// Deletions alone are committed once this many wait or `settleLinger`
    /// passed; otherwise they wait to share an insert's commit (under
    /// `sync: full` every commit is an fsync).
    let settleBatch: Int
    let settleLinger: Double

    private(set) var pending: [Pending] = []
    private(set) var deletions: [Deletion] = []
    private var pendingSince: Double?
    private var deletionsSince: Double?
    private var lastCommitEnd = 0.0
    private var nextSweep: Double
    /// Bumped when the next due time may have moved earlier, so a writer
    /// sleeping until the old one wakes to look again.
    private(set) var generation = 0

    init(settings: OutboxSettings, now: Double) {
        self.sync = settings.sync
        self.settleBatch = settings.settleBatch
        self.settleLinger = settings.settleLinger
        self.nextSweep = now
    }

    var isEmpty: Bool { pending.isEmpty && deletions.isEmpty }

    mutating func insert(_ item: Pending, now: Double) {
        if pending.isEmpty {
            pendingSince = now
            generation &+= 1
        }
        pending.append(item)
    }

    mutating func delete(_ rows: [Deletion], now: Double) {
        guard !rows.isEmpty else { return }
        if deletions.isEmpty {
            deletionsSince = now
            generation &+= 1
        }
        deletions.append(contentsOf: rows)
    }

    /// Whether the pending messages should be committed now.
    func insertsDue(now: Double) -> Bool {
        guard let since = pendingSince, !pending.isEmpty else { return false }
        guard pending.count < Self.lingerGroup else { return true }
        // Busy: the last commit ended after these messages started waiting.
        let busy = lastCommitEnd >= since - Self.commitLinger
        return !busy || now >= since + Self.commitLinger
    }

    /// Whether the waiting deletions should be committed on their own now.
    func deletionsDue(now: Double, stopping: Bool) -> Bool {
        guard let since = deletionsSince, !deletions.isEmpty else { return false }
        return stopping || deletions.count >= settleBatch || now >= since + settleLinger
    }

    func isDue(now: Double, stopping: Bool) -> Bool {
        insertsDue(now: now) || deletionsDue(now: now, stopping: stopping) || now >= nextSweep
            || (stopping && !pending.isEmpty)
    }

    /// When something becomes due without anything new arriving.
    func nextCheck() -> Double {
        var next = nextSweep
        if let deletionsSince { next = min(next, deletionsSince + settleLinger) }
        if let pendingSince { next = min(next, pendingSince + Self.commitLinger) }
        return next
    }

    /// Takes the work due now; nil when nothing is.
    mutating func take(now: Double, stopping: Bool) -> Work? {
        let sweep = now >= nextSweep
        if sweep { nextSweep = now + Self.sweepInterval }
        let inserts = insertsDue(now: now) || (stopping && !pending.isEmpty)
        let deleting = deletionsDue(now: now, stopping: stopping) || (inserts && !deletions.isEmpty)
        guard inserts || deleting || sweep else { return nil }
        var group: [Pending] = []
        if inserts || sweep {
            var count = min(pending.count, Self.maxGroup)
            if count > 0 { count = min(pending.count, count + pending[count - 1].batchRest) }
            if count == pending.count {
                // The usual case: everything pending, taken without a copy;
                // the next group gets room for as many at once instead of
                // growing its buffer by doubling from empty.
                swap(&group, &pending)
                pending.reserveCapacity(group.count)
            } else {
                group = Array(pending.prefix(count))
                pending.removeFirst(count)
            }
            pendingSince = pending.isEmpty ? nil : now
        }
        var taken: [Deletion] = []
        if deleting || sweep {
            // Taken, not copied: emptying the original "keeping capacity"
            // after a copy allocated a new buffer as large as it had been.
            swap(&taken, &deletions)
            deletionsSince = nil
        }
        return Work(group: group, deletions: taken, sweep: sweep)
    }

    mutating func committed(now: Double) {
        lastCommitEnd = now
    }

    /// A commit failed: its deletions go first in the next one (delivered
    /// rows left behind would only be sent again, never lost).
    mutating func retry(_ failed: [Deletion], now: Double) {
        guard !failed.isEmpty else { return }
        deletions.insert(contentsOf: failed, at: 0)
        if deletionsSince == nil { deletionsSince = now }
    }
}
