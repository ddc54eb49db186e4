import GatewayCore

/// Everything the outbox's parts share, under one lock (`Guarded`): an
/// admission must see capacity, lanes and the commit queue at once.
struct OutboxState: Sendable {
    var capacity: Capacity
    var lanes: [LaneState]
    var commits: CommitQueue
    var nextSequence: UInt64 = 1
    /// The highest row ID a forwarder may read: rows become visible only
    /// after their completions ran (see `Outbox`).
    var visibleThrough: Int64
    var accepting = true
    var stopRequested = false
    /// Whether the last commit succeeded, for `/readyz`.
    var writable = true
    /// A commit failed for want of disk space: QoS 1 is refused at once
    /// until the writer finds room again (see `Outbox+Storage`).
    var storageFull = false
    /// QoS 1 messages refused while the disk was full.
    var refusedWhileFull = 0
    /// When the writer looks for room again (monotonic seconds).
    var nextStorageProbe = Double.infinity
}
