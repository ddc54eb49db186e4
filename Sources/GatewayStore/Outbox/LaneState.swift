/// What the outbox holds for one upstream connection (under its lock).
struct LaneState: Sendable {
    var volatile = VolatileQueue()
    /// Its latest committed rows, for its forwarder to publish from memory.
    var recent: RecentRows
    var connected = false
}
