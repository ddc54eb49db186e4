import Foundation
import GatewayCore
import Logging
import Synchronization
import Testing
@testable import GatewayStore

/// A state directory in /tmp, removed afterwards.
struct TemporaryState {
    let path: String

    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-store-\(UUID().uuidString)").path
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

func message(_ topic: String = "dt/t", _ text: String = "x", qos: QoS = .atLeastOnce, expiresAt: Date? = nil) -> OutboundMessage {
    OutboundMessage(topic: topic, qos: qos, retain: false, payload: Array(text.utf8), receivedAt: Date(timeIntervalSince1970: 1_800_000_000.25), mapping: "m", expiresAt: expiresAt)
}

/// Collects completions and lets a test wait for them.
final class Completions: Sendable {
    private let results = Mutex<[Result<Int64, OutboxError>]>([])

    func record(_ result: Result<Int64, OutboxError>) { results.withLock { $0.append(result) } }

    func wait(for count: Int, timeout: Double = 5) -> [Result<Int64, OutboxError>] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let current = results.withLock { $0 }
            if current.count >= count { return current }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return results.withLock { $0 }
    }
}

@Suite("Outbox store")
struct OutboxStoreTests {
    @Test func commitFetchAndDeleteKeepCountsInStep() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let directory = try StateDirectory(path: state.path)
        let outbox = try OutboxStore(path: directory.databasePath, sync: .full)
        let first = try outbox.commit(inserting: [message("a/1", "one"), message("a/2", "two", qos: .atMostOnce)], deleting: [])
        #expect(first.ids.count == 2 && first.ids[0] < first.ids[1])
        #expect(try outbox.counts() == OutboxCounts(messages: 2, bytes: 3 + 3 + 3 + 3))

        let rows = try outbox.fetch(after: 0, limit: 10)
        #expect(rows.map(\.message) == [message("a/1", "one"), message("a/2", "two", qos: .atMostOnce)])
        #expect(try outbox.fetch(after: first.ids[0], limit: 10).map(\.id) == [first.ids[1]])
        #expect(try outbox.fetch(after: 0, through: first.ids[0], limit: 10).map(\.id) == [first.ids[0]])
        #expect(try outbox.lastID() == first.ids[1])

        let removed = try outbox.commit(inserting: [], deleting: [(first.ids[0], 6), (999, 5)])
        #expect(removed.removed == OutboxCounts(messages: 1, bytes: 6))
        #expect(try outbox.counts() == OutboxCounts(messages: 1, bytes: 6))
    }

    @Test func idsNeverGoBackwardsEvenWhenTheQueueEmpties() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let directory = try StateDirectory(path: state.path)
        let outbox = try OutboxStore(path: directory.databasePath, sync: .normal)
        let first = try outbox.commit(inserting: [message()], deleting: [])
        _ = try outbox.commit(inserting: [], deleting: [(first.ids[0], 0)])
        let second = try outbox.commit(inserting: [message()], deleting: [])
        #expect(second.ids[0] > first.ids[0])
    }

    @Test func messagesSurviveReopening() throws {
        let state = TemporaryState()
        defer { state.remove() }
        do {
            let directory = try StateDirectory(path: state.path)
            let outbox = try OutboxStore(path: directory.databasePath, sync: .full)
            _ = try outbox.commit(inserting: (0..<5).map { message("t/\($0)") }, deleting: [])
        }
        let directory = try StateDirectory(path: state.path)
        let outbox = try OutboxStore(path: directory.databasePath, sync: .full)
        #expect(try outbox.fetch(after: 0, limit: 100).map(\.message.topic) == (0..<5).map { "t/\($0)" })
        #expect(try outbox.counts().messages == 5)
    }

    @Test func aSecondProcessCannotTakeTheSameStateDirectory() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let held = try StateDirectory(path: state.path)
        #expect(throws: OutboxError.self) { _ = try StateDirectory(path: state.path) }
        _ = held
    }

    @Test func expiredRowsAreDeletedAndCounted() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let directory = try StateDirectory(path: state.path)
        let store = try OutboxStore(path: directory.databasePath, sync: .normal)
        let now = Date()
        _ = try store.commit(inserting: [
            message("old", "1", expiresAt: now.addingTimeInterval(-1)),
            message("fresh", "2", expiresAt: now.addingTimeInterval(60)),
            message("forever", "3"),
        ], deleting: [])
        let result = try store.commit(inserting: [], deleting: [], expireBefore: now)
        #expect(result.expired == OutboxCounts(messages: 1, bytes: 4))
        #expect(try store.fetch(after: 0, limit: 10).map(\.message.topic) == ["fresh", "forever"])
        #expect(try store.counts() == OutboxCounts(messages: 2, bytes: 6 + 8))
        #expect(try store.fetch(after: 0, limit: 1).first?.message.expiresAt != nil)
    }

    /// The forwarder's expired rows count once, even when the periodic sweep
    /// got to one of them first.
    @Test func expiredRowsTheForwarderMetCountOnlyIfStillThere() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let directory = try StateDirectory(path: state.path)
        let store = try OutboxStore(path: directory.databasePath, sync: .normal)
        let now = Date()
        let ids = try store.commit(inserting: [
            message("a", "1", expiresAt: now.addingTimeInterval(-1)),
            message("b", "2", expiresAt: now.addingTimeInterval(-1)),
        ], deleting: []).ids
        let swept = try store.commit(inserting: [], deleting: [], expiring: [(ids[0], 2)], expireBefore: now)
        #expect(swept.expired == OutboxCounts(messages: 2, bytes: 4))
        let again = try store.commit(inserting: [], deleting: [], expiring: [(ids[0], 2), (ids[1], 2)])
        #expect(again.expired == .zero)
        #expect(try store.counts() == .zero)
    }
}
