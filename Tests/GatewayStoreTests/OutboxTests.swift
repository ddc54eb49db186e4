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

func message(_ topic: String = "dt/t", _ text: String = "x", qos: QoS = .atLeastOnce) -> OutboundMessage {
    OutboundMessage(topic: topic, qos: qos, retain: false, payload: Array(text.utf8), receivedAt: Date(timeIntervalSince1970: 1_800_000_000.25), mapping: "m")
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

@Suite("Outbox")
struct OutboxTests {
    @Test func commitFetchAndDeleteKeepCountsInStep() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let directory = try StateDirectory(path: state.path)
        let outbox = try Outbox(path: directory.databasePath, sync: .full)
        let first = try outbox.commit(inserting: [message("a/1", "one"), message("a/2", "two", qos: .atMostOnce)], deleting: [])
        #expect(first.ids.count == 2 && first.ids[0] < first.ids[1])
        #expect(try outbox.counts() == OutboxCounts(messages: 2, bytes: 3 + 3 + 3 + 3))

        let rows = try outbox.fetch(after: 0, limit: 10)
        #expect(rows.map(\.message) == [message("a/1", "one"), message("a/2", "two", qos: .atMostOnce)])
        #expect(try outbox.fetch(after: first.ids[0], limit: 10).map(\.id) == [first.ids[1]])

        let removed = try outbox.commit(inserting: [], deleting: [(first.ids[0], 6), (999, 5)])
        #expect(removed.removed == OutboxCounts(messages: 1, bytes: 6))
        #expect(try outbox.counts() == OutboxCounts(messages: 1, bytes: 6))
    }

    @Test func idsNeverGoBackwardsEvenWhenTheQueueEmpties() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let directory = try StateDirectory(path: state.path)
        let outbox = try Outbox(path: directory.databasePath, sync: .normal)
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
            let outbox = try Outbox(path: directory.databasePath, sync: .full)
            _ = try outbox.commit(inserting: (0..<5).map { message("t/\($0)") }, deleting: [])
        }
        let directory = try StateDirectory(path: state.path)
        let outbox = try Outbox(path: directory.databasePath, sync: .full)
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
}

@Suite("Outbox writer")
struct OutboxWriterTests {
    func makeWriter(_ state: TemporaryState, maxMessages: Int = 100, maxBytes: Int = 1 << 20, onCommit: @escaping @Sendable () -> Void = {}) throws -> (Outbox, OutboxWriter, StateDirectory) {
        let directory = try StateDirectory(path: state.path)
        let outbox = try Outbox(path: directory.databasePath, sync: .full)
        let writer = try OutboxWriter(outbox: outbox, maxMessages: maxMessages, maxBytes: maxBytes, logger: Logger(label: "test"), onCommit: onCommit)
        return (outbox, writer, directory)
    }

    @Test func submittedMessagesAreCommittedInGroupsAndCompletedWithTheirIDs() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let commits = Mutex(0)
        let (outbox, writer, directory) = try makeWriter(state) { commits.withLock { $0 += 1 } }
        _ = directory
        let completions = Completions()
        // Submitted before the thread starts, so they must share one transaction.
        for index in 0..<50 {
            try writer.submit(message("t/\(index)"), completion: completions.record)
        }
        writer.start()
        let results = completions.wait(for: 50)
        #expect(results.count == 50)
        let ids = results.compactMap { try? $0.get() }
        #expect(ids == ids.sorted() && Set(ids).count == 50)
        #expect(commits.withLock { $0 } == 1)
        #expect(try outbox.counts().messages == 50)
        writer.shutdown()
    }

    @Test func capacityIsCheckedOnSubmitAndFreedByAcknowledgement() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let (outbox, writer, directory) = try makeWriter(state, maxMessages: 3)
        _ = directory
        writer.start()
        defer { writer.shutdown() }
        let completions = Completions()
        for index in 0..<3 { try writer.submit(message("t/\(index)"), completion: completions.record) }
        #expect(throws: OutboxRefusal.self) { try writer.submit(message("t/4"), completion: completions.record) }
        _ = completions.wait(for: 3)
        let rows = try outbox.fetch(after: 0, limit: 10)
        writer.acknowledge([(rows[0].id, rows[0].message.storedSize)])
        let deadline = Date().addingTimeInterval(5)
        while writer.queued.messages != 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(writer.queued.messages == 2)
        try writer.submit(message("t/5"), completion: completions.record)
    }

    @Test func byteCapacityCountsTopicAndPayload() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let (_, writer, directory) = try makeWriter(state, maxBytes: 10)
        _ = directory
        try writer.submit(message("abc", "1234"), completion: { _ in })
        #expect(throws: OutboxRefusal.self) { try writer.submit(message("abc", "1234"), completion: { _ in }) }
        writer.start()
        writer.shutdown()
    }

    @Test func shutdownCommitsEverythingAlreadySubmittedAndRefusesMore() throws {
        let state = TemporaryState()
        defer { state.remove() }
        let (outbox, writer, directory) = try makeWriter(state)
        _ = directory
        let completions = Completions()
        writer.start()
        for index in 0..<20 { try writer.submit(message("t/\(index)"), completion: completions.record) }
        writer.shutdown()
        #expect(completions.wait(for: 20, timeout: 0.1).count == 20)
        #expect(try outbox.counts().messages == 20)
        #expect(throws: OutboxRefusal.stopping) { try writer.submit(message(), completion: completions.record) }
    }
}
