import Foundation
import GatewayCore
import Logging
import Synchronization
import Testing
@testable import GatewayStore

/// Counts what the outbox reports.
final class RecordingObserver: GatewayObserver {
    struct Counts: Sendable {
        var shed = 0
        var expired: [QoS: Int] = [:]
        var dropped: [String: Int] = [:]
        var refused: [String: Int] = [:]
        var accepted: [QoS: Int] = [:]
        var commits = 0
    }
    let counts = Mutex(Counts())

    func requestAnswered(protocol: IngressProtocol, outcome: RequestOutcome) {}
    func messageAccepted(qos: QoS) { counts.withLock { $0.accepted[qos, default: 0] += 1 } }
    func messagesDelivered(qos: QoS, latencies: [Double]) {}
    func messagesResent(count: Int) {}
    func messagesExpired(qos: QoS, count: Int) { counts.withLock { $0.expired[qos, default: 0] += count } }
    func messagesShed(count: Int) { counts.withLock { $0.shed += count } }
    func messagesDropped(reason: String, qos: QoS, count: Int) { counts.withLock { $0.dropped[reason, default: 0] += count } }
    func messageRefused(reason: String) { counts.withLock { $0.refused[reason, default: 0] += 1 } }
    func brokerRefused(reasonCode: Int) {}
    func upstreamConnection(_ connection: Int, connected: Bool) {}
    func commitFinished(messages: Int, deletions: Int, seconds: Double) { counts.withLock { $0.commits += 1 } }
    var value: Counts { counts.withLock { $0 } }
}

/// An outbox over a fresh database.
struct OutboxFixture {
    let state = TemporaryState()
    let directory: StateDirectory
    let outbox: Outbox
    let observer = RecordingObserver()

    init(_ adjust: (inout OutboxSettings) -> Void = { _ in }) throws {
        directory = try StateDirectory(path: state.path)
        var settings = OutboxSettings(maxMessages: 100, maxBytes: 1 << 20, sync: .normal)
        adjust(&settings)
        outbox = try Outbox(store: OutboxStore(path: directory.databasePath, sync: .normal), settings: settings, logger: Logger(label: "t"), observer: observer)
    }

    func close() {
        outbox.shutdown()
        state.remove()
    }
}

@Suite("Outbox")
struct OutboxQueueTests {
    @Test func qos1IsCommittedInGroupsAndBecomesVisibleAfterItsCompletion() throws {
        let fixture = try OutboxFixture()
        defer { fixture.close() }
        let completions = Completions()
        let visibleAtCompletion = Mutex<[Int64]>([])
        for index in 0..<50 {
            let admission = try fixture.outbox.submit(message("t/\(index)")) { [outbox = fixture.outbox] result in
                visibleAtCompletion.withLock { $0.append(outbox.visibleThrough) }
                completions.record(result)
            }
            #expect(admission == .pending)
        }
        fixture.outbox.start()
        let results = completions.wait(for: 50)
        let ids = results.compactMap { try? $0.get() }
        #expect(ids.count == 50 && ids == ids.sorted())
        // While completions run, their rows are not yet visible to the forwarder.
        #expect(visibleAtCompletion.withLock { $0 }.allSatisfy { $0 < ids[0] })
        let deadline = Date().addingTimeInterval(20)
        while fixture.outbox.visibleThrough != ids.last! && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(fixture.outbox.visibleThrough == ids.last!)
        #expect(fixture.observer.value.commits == 1)
        #expect(fixture.observer.value.accepted[.atLeastOnce] == 50)
    }

    @Test func qos0IsQueuedInMemoryWhileConnected() throws {
        let fixture = try OutboxFixture()
        defer { fixture.close() }
        fixture.outbox.lanes[0].setConnected(true)
        let admission = try fixture.outbox.submit(message("zero", qos: .atMostOnce)) { _ in Issue.record("no completion for QoS 0") }
        #expect(admission == .queued(sequence: 1))
        #expect(fixture.outbox.lanes[0].peekVolatile(limit: 10).map(\.message.topic) == ["zero"])
        #expect(fixture.outbox.snapshot().qos0.messages == 1)
        fixture.outbox.lanes[0].consumeVolatile(through: 1)
        #expect(fixture.outbox.lanes[0].peekVolatile(limit: 10).isEmpty)
    }

    @Test func qos0WhileOfflineIsDroppedByDefaultAndKeptOnRequest() throws {
        let dropping = try OutboxFixture()
        defer { dropping.close() }
        #expect(try dropping.outbox.submit(message(qos: .atMostOnce)) { _ in } == .dropped)
        #expect(dropping.observer.value.dropped["offline"] == 1)

        let keeping = try OutboxFixture { $0.qos0WhenOffline = .keep }
        defer { keeping.close() }
        #expect(try keeping.outbox.submit(message(qos: .atMostOnce)) { _ in } == .queued(sequence: 1))
    }

    @Test func losingTheConnectionDropsQueuedQoS0UnlessKept() throws {
        let fixture = try OutboxFixture()
        defer { fixture.close() }
        fixture.outbox.lanes[0].setConnected(true)
        for _ in 0..<3 { _ = try fixture.outbox.submit(message(qos: .atMostOnce)) { _ in } }
        fixture.outbox.lanes[0].setConnected(false)
        #expect(fixture.outbox.lanes[0].peekVolatile(limit: 10).isEmpty)
        #expect(fixture.observer.value.dropped["offline"] == 3)
    }

    @Test func whenFullQoS0IsShedOldestFirstBeforeQoS1IsRefused() throws {
        let fixture = try OutboxFixture { $0.maxMessages = 4; $0.qos0WhenOffline = .keep }
        defer { fixture.close() }
        for index in 0..<3 { _ = try fixture.outbox.submit(message("zero-\(index)", qos: .atMostOnce)) { _ in } }
        _ = try fixture.outbox.submit(message("one-0")) { _ in }
        // Full: each new QoS 1 message sheds the oldest QoS 0 one.
        _ = try fixture.outbox.submit(message("one-1")) { _ in }
        #expect(fixture.outbox.lanes[0].peekVolatile(limit: 10).map(\.message.topic) == ["zero-1", "zero-2"])
        _ = try fixture.outbox.submit(message("one-2")) { _ in }
        _ = try fixture.outbox.submit(message("one-3")) { _ in }
        #expect(fixture.outbox.lanes[0].peekVolatile(limit: 10).isEmpty)
        #expect(fixture.observer.value.shed == 3)
        // Nothing left to shed: refused.
        #expect(throws: OutboxRefusal.full) { _ = try fixture.outbox.submit(message("one-4")) { _ in } }
        #expect(throws: OutboxRefusal.full) { _ = try fixture.outbox.submit(message("zero-9", qos: .atMostOnce)) { _ in } }
        #expect(fixture.observer.value.refused["full"] == 2)
        #expect(fixture.outbox.durableCounts.messages == 4)
    }

    @Test func theQoS0QueueHasItsOwnBounds() throws {
        let fixture = try OutboxFixture { $0.qos0MaxMessages = 2; $0.qos0WhenOffline = .keep }
        defer { fixture.close() }
        for index in 0..<5 { _ = try fixture.outbox.submit(message("z\(index)", qos: .atMostOnce)) { _ in } }
        #expect(fixture.outbox.lanes[0].peekVolatile(limit: 10).map(\.message.topic) == ["z3", "z4"])
        #expect(fixture.observer.value.shed == 3)
    }

    @Test func byteCapacityCountsTopicAndPayload() throws {
        let fixture = try OutboxFixture { $0.maxBytes = 10 }
        defer { fixture.close() }
        _ = try fixture.outbox.submit(message("abc", "1234")) { _ in }
        #expect(throws: OutboxRefusal.full) { _ = try fixture.outbox.submit(message("abc", "1234")) { _ in } }
    }

    @Test func acknowledgedRowsFreeCapacity() throws {
        let fixture = try OutboxFixture { $0.maxMessages = 2 }
        defer { fixture.close() }
        fixture.outbox.start()
        let completions = Completions()
        for index in 0..<2 { _ = try fixture.outbox.submit(message("t/\(index)"), completion: completions.record) }
        let ids = completions.wait(for: 2).compactMap { try? $0.get() }
        #expect(throws: OutboxRefusal.full) { _ = try fixture.outbox.submit(message(), completion: completions.record) }
        fixture.outbox.lanes[0].acknowledge([(ids[0], message("t/0").storedSize)])
        let deadline = Date().addingTimeInterval(20)
        while fixture.outbox.durableCounts.messages != 1 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        _ = try fixture.outbox.submit(message(), completion: completions.record)
    }

    @Test func shutdownCommitsEverythingSubmittedAndRefusesMore() throws {
        let fixture = try OutboxFixture()
        defer { fixture.state.remove() }
        let completions = Completions()
        fixture.outbox.start()
        for index in 0..<20 { _ = try fixture.outbox.submit(message("t/\(index)"), completion: completions.record) }
        fixture.outbox.shutdown()
        #expect(completions.wait(for: 20, timeout: 0.1).count == 20)
        #expect(try OutboxStore(path: fixture.directory.databasePath, sync: .normal).counts().messages == 20)
        #expect(throws: OutboxRefusal.stopping) { _ = try fixture.outbox.submit(message(), completion: completions.record) }
        #expect(fixture.observer.value.refused["stopping"] == 1)
    }

    @Test func snapshotReportsDepthAndOldestAgeByQoS() throws {
        let fixture = try OutboxFixture { $0.qos0WhenOffline = .keep }
        defer { fixture.close() }
        fixture.outbox.start()
        let completions = Completions()
        _ = try fixture.outbox.submit(message("one", "12"), completion: completions.record)
        _ = try fixture.outbox.submit(message("zero", "1", qos: .atMostOnce)) { _ in }
        _ = completions.wait(for: 1)
        let snapshot = fixture.outbox.snapshot(now: Date(timeIntervalSince1970: 1_800_000_010.25))
        #expect(snapshot.qos1 == .init(messages: 1, bytes: 5, oldestAge: 10))
        #expect(snapshot.qos0 == .init(messages: 1, bytes: 5, oldestAge: 10))
    }
}
