import Foundation
import GatewayCore
import GatewayStore
import Logging
import Testing
@testable import GatewayRuntime

/// Several connections over one outbox, each forwarder with its own fake upstream.
final class ShardedHarness {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-shard-\(UUID().uuidString)").path
    let directory: StateDirectory
    let outbox: Outbox
    let upstreams: [FakeUpstream]
    let forwarders: [Forwarder]

    init(connections: Int, publishRate: Double? = nil) throws {
        directory = try StateDirectory(path: path)
        let settings = OutboxSettings(maxMessages: 10_000, maxBytes: 1 << 30, sync: .normal)
        outbox = try Outbox(store: OutboxStore(path: directory.databasePath, sync: .normal, shards: connections), settings: settings, logger: Logger(label: "t"))
        upstreams = (0..<connections).map { _ in FakeUpstream() }
        forwarders = (0..<connections).map { [outbox, upstreams] index in
            Forwarder(lane: outbox.lanes[index], client: upstreams[index], window: 20, publishRate: publishRate, logger: Logger(label: "t"))
        }
        outbox.whenNewMessages { [forwarders] in forwarders.forEach { $0.notifyNewData() } }
        outbox.start()
        forwarders.forEach { $0.start() }
    }

    func store(_ topics: [String]) throws {
        let done = DispatchGroup()
        for topic in topics {
            done.enter()
            _ = try outbox.submit(OutboundMessage(topic: topic, qos: .atLeastOnce, retain: false, payload: Array(topic.utf8), receivedAt: Date(), mapping: "m")) { _ in done.leave() }
        }
        done.wait()
    }

    func close() {
        forwarders.forEach { $0.stop(drainTimeout: 0.1) }
        outbox.shutdown()
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite("Connections and rate limits")
struct ShardingTests {
    @Test func eachConnectionCarriesItsOwnKeysInOrder() throws {
        let harness = try ShardedHarness(connections: 3)
        defer { harness.close() }
        let topics = (0..<60).map { "dt/device-\($0 % 12)/t/\($0)" }
        // Shard by device: the key is the topic's first two levels here.
        try harness.store(topics)
        harness.upstreams.forEach { $0.connect() }
        // Acknowledge as they come, so each connection's window keeps moving.
        var acknowledged = Array(repeating: 0, count: 3)
        #expect(harness.upstreams[0].waitUntil { _ in
            for (index, upstream) in harness.upstreams.enumerated() {
                let published = upstream.published
                for message in published[acknowledged[index]...] { upstream.acknowledge(message.messageID) }
                acknowledged[index] = published.count
            }
            return acknowledged.reduce(0, +) == 60
        })
        for (index, upstream) in harness.upstreams.enumerated() {
            let mine = upstream.published.map(\.topic)
            #expect(!mine.isEmpty, "connection \(index) got nothing")
            // Only its own shard, and in acceptance order.
            #expect(mine.allSatisfy { ShardHash.shard(ShardHash.of($0), of: 3) == index })
            #expect(mine == topics.filter { mine.contains($0) })
        }
    }

    @Test func reshardingKeepsEveryQueuedMessage() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-reshard-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let topics = (0..<30).map { "k/\($0)" }
        do {
            let directory = try StateDirectory(path: path)
            let store = try OutboxStore(path: directory.databasePath, sync: .normal, shards: 1)
            _ = try store.append(topics.map { OutboundMessage(topic: $0, qos: .atLeastOnce, retain: false, payload: [], receivedAt: Date(), mapping: "m") })
        }
        let directory = try StateDirectory(path: path)
        let store = try OutboxStore(path: directory.databasePath, sync: .normal, shards: 4)
        var seen: [String] = []
        for shard in 0..<4 {
            let rows = try store.fetch(after: 0, limit: 100, shard: shard).map(\.message.topic)
            #expect(rows.allSatisfy { ShardHash.shard(ShardHash.of($0), of: 4) == shard })
            #expect(rows == topics.filter { rows.contains($0) })
            seen += rows
        }
        #expect(seen.sorted() == topics.sorted())
        _ = directory
    }

    @Test func aConnectionNeverExceedsItsPublishRate() throws {
        let harness = try ShardedHarness(connections: 1, publishRate: 20)
        defer { harness.close() }
        try harness.store((0..<30).map { "r/\($0)" })
        let upstream = harness.upstreams[0]
        upstream.connect()
        // Acknowledge as they come: only the rate may hold them back.
        var acknowledged = 0
        #expect(upstream.waitUntil { upstream in
            let published = upstream.published
            for message in published[acknowledged...] { upstream.acknowledge(message.messageID) }
            acknowledged = published.count
            return acknowledged == 30
        })
        let times = upstream.published.map(\.at)
        for (index, start) in times.enumerated() {
            #expect(times[index...].prefix { $0 < start + 1.05 }.count <= 20)
        }
    }
}
