import Foundation
import GatewayCore
import GatewayStore
import Logging
import Testing
@testable import GatewayRuntime

/// A forwarder over a real outbox in a temporary directory and a fake upstream.
final class ForwarderHarness {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-fwd-\(UUID().uuidString)").path
    let directory: StateDirectory
    let outbox: Outbox
    let writer: OutboxWriter
    let upstream = FakeUpstream()
    let forwarder: Forwarder

    init(window: Int) throws {
        directory = try StateDirectory(path: path)
        outbox = try Outbox(path: directory.databasePath, sync: .normal)
        let relay = CommitRelay()
        writer = try OutboxWriter(outbox: outbox, maxMessages: 10_000, maxBytes: 1 << 30, logger: Logger(label: "t"), onCommit: { relay.fire() })
        forwarder = Forwarder(outbox: outbox, writer: writer, client: upstream, window: window, logger: Logger(label: "t"))
        relay.connect { [forwarder] in forwarder.notifyNewData() }
        writer.start()
        forwarder.start()
    }

    /// Submits messages and waits until they are committed.
    func store(_ topics: [String], qos: QoS = .atLeastOnce) throws {
        let done = DispatchGroup()
        for topic in topics {
            done.enter()
            try writer.submit(OutboundMessage(topic: topic, qos: qos, retain: false, payload: Array(topic.utf8), receivedAt: Date(), mapping: "m")) { _ in done.leave() }
        }
        done.wait()
    }

    func depth() throws -> Int { try outbox.counts().messages }

    func waitForDepth(_ expected: Int) -> Bool {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if (try? depth()) == expected { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return (try? depth()) == expected
    }

    func close() {
        forwarder.stop(drainTimeout: 0.2)
        writer.shutdown()
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite("Forwarder")
struct ForwarderTests {
    @Test func nothingIsPublishedUntilConnected() throws {
        let harness = try ForwarderHarness(window: 5)
        defer { harness.close() }
        try harness.store(["a", "b"])
        Thread.sleep(forTimeInterval: 0.1)
        #expect(harness.upstream.published.isEmpty)
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 2 })
        #expect(harness.upstream.published.map(\.topic) == ["a", "b"])
    }

    @Test func theWindowBoundsWhatIsInFlightAndAcknowledgementsDeleteRows() throws {
        let harness = try ForwarderHarness(window: 3)
        defer { harness.close() }
        let topics = (0..<10).map { "t/\($0)" }
        try harness.store(topics)
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 3 })
        Thread.sleep(forTimeInterval: 0.05)
        #expect(harness.upstream.published.count == 3)
        var acknowledged = 0
        while acknowledged < 10 {
            guard harness.upstream.waitUntil({ $0.published.count > acknowledged }) else { break }
            let next = harness.upstream.published[acknowledged]
            #expect(harness.upstream.published.count - acknowledged <= 3)
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
        Thread.sleep(forTimeInterval: 0.1)
        #expect(harness.upstream.published.count == 2)
        #expect(try harness.depth() == 2)
        // The client's own resend is acknowledged under the same IDs.
        for published in harness.upstream.published { harness.upstream.acknowledge(published.messageID) }
        #expect(harness.waitForDepth(0))
    }

    @Test func qos0InFlightAtADisconnectIsDropped() throws {
        let harness = try ForwarderHarness(window: 5)
        defer { harness.close() }
        try harness.store(["zero"], qos: .atMostOnce)
        harness.upstream.connect()
        #expect(harness.upstream.waitUntil { $0.published.count == 1 })
        harness.upstream.disconnect()
        #expect(harness.waitForDepth(0))
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
        harness.writer.shutdown()
        #expect(try harness.depth() == 0)
        try? FileManager.default.removeItem(atPath: harness.path)
    }
}
