import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

/// When the writer commits, decided on a number for a clock.
@Suite("CommitQueue")
struct CommitQueueTests {
    static func settings(_ sync: SyncMode) -> OutboxSettings {
        OutboxSettings(maxMessages: 100, maxBytes: 1 << 20, sync: sync)
    }

    static func pending(_ topic: String = "t") -> CommitQueue.Pending {
        CommitQueue.Pending(
            message: OutboundMessage(topic: topic, qos: .atLeastOnce, retain: false, payload: [1], receivedAt: Date(), mapping: "m"),
            completion: { _ in }
        )
    }

    static func deletions(_ count: Int, lane: Int = 0) -> [CommitQueue.Deletion] {
        (0..<count).map { CommitQueue.Deletion(id: Int64($0 + 1), size: 2, lane: lane, expired: false) }
    }

    @Test("under sync: normal an insert is due at once and takes the waiting deletions along")
    func normalInsertsAreDueAtOnce() throws {
        var queue = CommitQueue(settings: Self.settings(.normal), now: 0)
        _ = queue.take(now: 0, stopping: false)  // the first sweep
        queue.delete(Self.deletions(3), now: 1)
        #expect(!queue.isDue(now: 1.001, stopping: false))
        queue.insert(Self.pending(), now: 1.001)
        #expect(queue.isDue(now: 1.001, stopping: false))
        let taken = queue.take(now: 1.001, stopping: false)
        let work = try #require(taken)
        #expect(work.group.count == 1)
        #expect(work.deletions.count == 3)
        #expect(!work.sweep)
        #expect(queue.isEmpty)
    }

    @Test("deletions alone wait for settleLinger or settleBatch, whichever comes first")
    func deletionsAloneLinger() {
        var settings = Self.settings(.normal)
        settings.settleBatch = 4
        settings.settleLinger = 0.002
        var queue = CommitQueue(settings: settings, now: 0)
        _ = queue.take(now: 0, stopping: false)
        queue.delete(Self.deletions(2), now: 10)
        #expect(queue.take(now: 10.001, stopping: false) == nil)
        #expect(queue.nextCheck() == 10.002)
        #expect(queue.take(now: 10.002, stopping: false)?.deletions.count == 2)
        queue.delete(Self.deletions(4), now: 11)
        #expect(queue.take(now: 11, stopping: false)?.deletions.count == 4, "a full batch goes at once")
        queue.delete(Self.deletions(1), now: 12)
        #expect(queue.take(now: 12, stopping: true)?.deletions.count == 1, "stopping commits what waits")
    }

    @Test("a busy writer lets new messages wait 1 ms for company; a quiet one commits at once", arguments: [SyncMode.normal, .full])
    func lingersOnlyWhenBusy(_ sync: SyncMode) {
        var queue = CommitQueue(settings: Self.settings(sync), now: 0)
        _ = queue.take(now: 0, stopping: false)
        queue.insert(Self.pending(), now: 5)
        #expect(queue.insertsDue(now: 5), "quiet: at once")
        _ = queue.take(now: 5, stopping: false)
        queue.committed(now: 5.0005)
        queue.insert(Self.pending(), now: 5.0006)
        #expect(!queue.insertsDue(now: 5.0007), "busy: waits for company")
        #expect(queue.insertsDue(now: 5.0017), "but never past commitLinger")
        for _ in 0..<CommitQueue.lingerGroup { queue.insert(Self.pending(), now: 5.0007) }
        #expect(queue.insertsDue(now: 5.0007), "a full linger group goes at once")
    }

    @Test("a group holds at most maxGroup messages; the rest wait for the next commit")
    func groupsAreBounded() {
        var queue = CommitQueue(settings: Self.settings(.normal), now: 0)
        _ = queue.take(now: 0, stopping: false)
        for _ in 0..<(CommitQueue.maxGroup + 5) { queue.insert(Self.pending(), now: 1) }
        #expect(queue.take(now: 1, stopping: false)?.group.count == CommitQueue.maxGroup)
        #expect(queue.take(now: 1, stopping: false)?.group.count == 5)
    }

    @Test("the sweep comes every 30 s even with nothing else to do")
    func sweepIsPeriodic() {
        var queue = CommitQueue(settings: Self.settings(.normal), now: 100)
        #expect(queue.take(now: 100, stopping: false)?.sweep == true)
        #expect(queue.take(now: 129, stopping: false) == nil)
        #expect(queue.nextCheck() == 130)
        #expect(queue.take(now: 130, stopping: false)?.sweep == true)
    }

    @Test("a failed commit's deletions go first in the next one")
    func failedDeletionsAreRetriedFirst() {
        var queue = CommitQueue(settings: Self.settings(.normal), now: 0)
        _ = queue.take(now: 0, stopping: false)
        queue.delete([.init(id: 9, size: 1, lane: 1, expired: true)], now: 1)
        queue.retry(Self.deletions(2), now: 1)
        #expect(queue.deletions.map(\.id) == [1, 2, 9])
    }

    @Test("the generation moves only when the next due time may have moved earlier")
    func generation() {
        var queue = CommitQueue(settings: Self.settings(.normal), now: 0)
        let start = queue.generation
        queue.insert(Self.pending(), now: 1)
        queue.insert(Self.pending(), now: 1)
        #expect(queue.generation == start &+ 1)
        queue.delete(Self.deletions(1), now: 1)
        queue.delete(Self.deletions(1), now: 1)
        #expect(queue.generation == start &+ 2)
    }
}
