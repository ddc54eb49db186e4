import Foundation
import GatewayCore
import GatewayStore
import Logging
import Synchronization
import Testing
@testable import GatewayRuntime

/// A forwarder thread over a real outbox in a temporary directory and a
/// fake upstream: the plumbing between them. Its decisions are
/// ForwarderMachineTests'.
final class ForwarderHarness {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-fwd-\(UUID().uuidString)").path
    let directory: StateDirectory
    let outbox: Outbox
    let upstream = FakeUpstream()
    let tracker = DeliveryTracker()
    let forwarder: Forwarder

    init(window: Int, qos0WhenOffline: OfflineQoS0 = .drop, ackTimeout: Double? = nil, logger: Logger = Logger(label: "t")) throws {
        directory = try StateDirectory(path: path)
        var settings = OutboxSettings(maxMessages: 10_000, maxBytes: 1 << 30, sync: .normal)
        settings.qos0WhenOffline = qos0WhenOffline
        outbox = try Outbox(store: OutboxStore(path: directory.databasePath, sync: .normal), settings: settings, logger: Logger(label: "t"))
        forwarder = Forwarder(
            lane: outbox.lanes[0], client: upstream, window: window, ackTimeout: ackTimeout, tracker: tracker, logger: logger
        )
        outbox.whenNewMessages { [forwarder] in forwarder.notifyNewData() }
        outbox.start()
        forwarder.start()
    }

    /// Submits messages and waits until they are committed and visible to
    /// the forwarder (QoS 1) or queued (QoS 0).
    func store(_ topics: [String], qos: QoS = .atLeastOnce, expiresAt: Date? = nil, receivedAt: Date = Date()) throws {
        let done = DispatchGroup()
        let last = Mutex<Int64>(0)
        for topic in topics {
            done.enter()
            let message = OutboundMessage(topic: topic, qos: qos, retain: false, payload: Array(topic.utf8), receivedAt: receivedAt, mapping: "m", expiresAt: expiresAt)
            let admission = try outbox.submit(message) { result in
                if let id = try? result.get() { last.withLock { $0 = max($0, id) } }
                done.leave()
            }
            if admission != .pending { done.leave() }
        }
        #expect(done.wait(timeout: .now() + 20) == .success, "commits did not complete")
        let target = last.withLock { $0 }
        let deadline = Date().addingTimeInterval(20)
        while outbox.visibleThrough < target && Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
        #expect(outbox.visibleThrough >= target, "committed rows never became visible")
    }

    /// QoS 1 rows in the outbox (its count follows each commit).
    func depth() throws -> Int { outbox.durableCounts.messages }

    /// Whether the outbox has heard that the upstream is connected.
    var outboxConnected: Bool { outbox.upstreamConnected }

    func waitForDepth(_ expected: Int) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if (try? depth()) == expected { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return (try? depth()) == expected
    }

    func close() {
        forwarder.stop(drainTimeout: 0.2)
        outbox.shutdown()
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite("Forwarder")
struct ForwarderTests {
    @Test func nothingIsPublishedUntilConnected() throws {
        let harness = try ForwarderHarness(window: 5)
        defer { harness.close() }
        try harness.store(["a", "b"])
        #expect(harness.upstream.published.isEmpty)
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 2 })
        #expect(harness.upstream.published.map(\.topic) == ["a", "b"])
    }

    @Test func theHandoverWindowBoundsWhatIsInFlightAndAcknowledgementsDeleteRows() throws {
        // Window 3 on the wire (the client's own limit) plus 3 handed over ahead.
        let harness = try ForwarderHarness(window: 3)
        defer { harness.close() }
        let topics = (0..<20).map { "t/\($0)" }
        try harness.store(topics)
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 6 })
        var acknowledged = 0
        while acknowledged < 20 {
            guard harness.upstream.waitUntil({ $0.published.count > acknowledged }) else { break }
            let next = harness.upstream.published[acknowledged]
            #expect(harness.upstream.published.count - acknowledged <= 6)
            harness.upstream.acknowledge(next.messageID)
            acknowledged += 1
        }
        #expect(harness.upstream.published.map(\.topic) == topics)
        #expect(harness.waitForDepth(0))
    }

    @Test func qos1InFlightAtADisconnectIsLeftToTheClientNotRepublished() throws {
        let harness = try ForwarderHarness(window: 5)
        defer { harness.close() }
        try harness.store(["a", "b"])
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 2 })
        harness.upstream.disconnect()
        harness.upstream.connect()
        #expect(try harness.depth() == 2)
        // The client's own resend is acknowledged under the same IDs.
        for published in harness.upstream.published.prefix(2) { harness.upstream.acknowledge(published.messageID) }
        #expect(harness.waitForDepth(0))
        #expect(harness.upstream.published.count == 2, "published again: \(harness.upstream.published.map(\.topic))")
    }

    @Test func qos0InFlightAtADisconnectIsDroppedAndItsWindowSlotFreed() throws {
        let harness = try ForwarderHarness(window: 1)
        defer { harness.close() }
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { _ in harness.outboxConnected })
        try harness.store(["zero"], qos: .atMostOnce)
        #expect(harness.upstream.waitUntil { $0.published.count == 1 })
        #expect(harness.outbox.lanes[0].peekVolatile(limit: 10).isEmpty)
        // Never written (no `.published`): the disconnect must free the slot.
        harness.upstream.disconnect()
        try harness.store(["one"])
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.map(\.topic) == ["zero", "one"] })
    }

    @Test func aMessageThatCannotBeSentIsRetriedAfterReconnecting() throws {
        let harness = try ForwarderHarness(window: 5)
        defer { harness.close() }
        harness.upstream.connect()
        harness.upstream.disconnect()  // the forwarder has not heard yet when it publishes
        try harness.store(["late"])
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.map(\.topic) == ["late"] })
    }

    @Test func aRejectedMessageIsDroppedAndTheRestFlow() throws {
        let harness = try ForwarderHarness(window: 5)
        defer { harness.close() }
        harness.upstream.reject(topic: "bad")
        try harness.store(["ok-1", "bad", "ok-2"])
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 2 })
        #expect(harness.upstream.published.map(\.topic) == ["ok-1", "ok-2"])
        for published in harness.upstream.published { harness.upstream.acknowledge(published.messageID) }
        #expect(harness.waitForDepth(0))
    }

    @Test func messagesStoredWhileConnectedFlowWithoutWaiting() throws {
        let harness = try ForwarderHarness(window: 100)
        defer { harness.close() }
        harness.upstream.connect()
        for batch in 0..<5 {
            try harness.store((0..<20).map { "b\(batch)/\($0)" })
        }
        #expect(harness.upstream.waitUntil { $0.published.count == 100 })
        #expect(harness.upstream.published.map(\.topic) == (0..<5).flatMap { batch in (0..<20).map { "b\(batch)/\($0)" } })
    }

    @Test func stopWaitsForAcknowledgementsThenStopsTheClient() throws {
        let harness = try ForwarderHarness(window: 5)
        try harness.store(["a"])
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 1 })
        let id = harness.upstream.published[0].messageID
        let upstream = harness.upstream
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) { upstream.acknowledge(id) }
        harness.forwarder.stop(drainTimeout: 2)
        #expect(harness.upstream.stopped)
        harness.outbox.shutdown()
        #expect(try harness.depth() == 0)
        try? FileManager.default.removeItem(atPath: harness.path)
    }

    @Test func qos0AndQoS1AreMergedInAcceptanceOrder() throws {
        let harness = try ForwarderHarness(window: 10, qos0WhenOffline: .keep)
        defer { harness.close() }
        let base = Date()
        try harness.store(["one-a"], receivedAt: base)
        try harness.store(["zero-a"], qos: .atMostOnce, receivedAt: base.addingTimeInterval(0.001))
        try harness.store(["one-b"], receivedAt: base.addingTimeInterval(0.002))
        try harness.store(["zero-b"], qos: .atMostOnce, receivedAt: base.addingTimeInterval(0.003))
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 4 })
        #expect(harness.upstream.published.map(\.topic) == ["one-a", "zero-a", "one-b", "zero-b"])
        #expect(harness.upstream.published.map(\.qos) == [.atLeastOnce, .atMostOnce, .atLeastOnce, .atMostOnce])
    }

    @Test func expiredMessagesAreDroppedUnsent() throws {
        let harness = try ForwarderHarness(window: 10)
        defer { harness.close() }
        try harness.store(["stale"], expiresAt: Date().addingTimeInterval(-1))
        try harness.store(["fresh"], expiresAt: Date().addingTimeInterval(60))
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 1 })
        harness.upstream.acknowledge(harness.upstream.published[0].messageID)
        // Both rows gone: the stale one deleted unsent, the fresh one delivered.
        #expect(harness.waitForDepth(0))
        #expect(harness.upstream.published.map(\.topic) == ["fresh"])
    }

    @Test func aDeliveryWaiterHearsOfThePubackAndAnotherTimesOut() throws {
        let harness = try ForwarderHarness(window: 10)
        defer { harness.close() }
        let results = Mutex<[String: Bool]>([:])
        let done = DispatchGroup()
        for topic in ["acked", "never"] {
            done.enter()
            _ = try harness.outbox.submit(OutboundMessage(topic: topic, qos: .atLeastOnce, retain: false, payload: [1], receivedAt: Date(), mapping: "m")) {
                [tracker = harness.tracker] result in
                tracker.register(.row(try! result.get()), timeout: 2) { delivered in
                    results.withLock { $0[topic] = delivered }
                    done.leave()
                }
            }
        }
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 2 })
        harness.upstream.acknowledge(harness.upstream.published.first { $0.topic == "acked" }!.messageID)
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(results.withLock { $0 } == ["acked": true, "never": false])
        // The timed-out message is still queued and goes out once acknowledged.
        #expect(try harness.depth() == 1)
    }

    @Test func aQuotaRefusalPausesAndSendsTheMessageAgain() throws {
        let (logger, lines) = RecordingLogHandler.logger()
        let harness = try ForwarderHarness(window: 5, logger: logger)
        defer { harness.close() }
        try harness.store(["quota"])
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 1 })
        let started = Date()
        harness.upstream.refuse(harness.upstream.published[0].messageID, code: 0x97, transient: true)
        #expect(harness.upstream.waitUntil { $0.published.count == 2 })
        // Slowed down rather than hammering: the second attempt waited.
        #expect(Date().timeIntervalSince(started) >= 0.9)
        #expect(harness.upstream.published.map(\.topic) == ["quota", "quota"])
        // The log names the message: its topic and its mapping.
        let refusal = try #require(lines.all.first { $0.message == "broker refused a message for now; slowing down" })
        #expect(refusal.level == .warning)
        #expect(refusal.metadata["mqtt.topic"]?.description == "quota")
        #expect(refusal.metadata["mapping"]?.description == "m")
        #expect(refusal.metadata["mqtt.reason_code"]?.description == "0x97")
        harness.upstream.acknowledge(harness.upstream.published[1].messageID)
        #expect(harness.waitForDepth(0))
    }

    @Test func aConnectionThatStopsAcknowledgingIsReplacedAndTheMessageStillDelivered() throws {
        let (logger, lines) = RecordingLogHandler.logger()
        let harness = try ForwarderHarness(window: 5, ackTimeout: 0.3, logger: logger)
        defer { harness.close() }
        try harness.store(["stuck"])
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 1 })
        #expect(harness.upstream.waitUntil { $0.reconnects == 1 })
        let stalled = lines.all.filter { $0.message == "upstream stalled; reconnecting" }
        #expect(stalled.count == 1)
        #expect(stalled.first?.level == .warning)
        #expect(stalled.first?.metadata["reason"]?.description == "no PUBACK in 0.3 s for the oldest of 1 messages in flight")
        // The client resends under the same ID; its PUBACK deletes the row.
        harness.upstream.acknowledge(harness.upstream.published[0].messageID)
        #expect(harness.waitForDepth(0))
        #expect(harness.upstream.published.count == 1)
    }

    @Test func aPermanentRefusalDropsTheMessage() throws {
        let harness = try ForwarderHarness(window: 5)
        defer { harness.close() }
        try harness.store(["forbidden", "fine"])
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 2 })
        harness.upstream.refuse(harness.upstream.published[0].messageID, code: 0x87, transient: false)
        harness.upstream.acknowledge(harness.upstream.published[1].messageID)
        #expect(harness.waitForDepth(0))
        #expect(harness.upstream.published.count == 2)
    }
}
