import Foundation
import GRDB
import Testing
@testable import GatewayStore

/// `queue stats` and `queue peek` underneath: `OutboxReader` on a database
/// made from the SQL schema.
@Suite("Inspection: reading the outbox")
struct InspectionReaderTests {
    static let t0: Int64 = 1_760_000_000_000

    static func sample(_ fixture: InspectionFixture) throws {
        typealias Row = InspectionFixture.Row
        try fixture.insert([
            Row(topic: "dt/sensors/a/temperature", payload: Array("21.5".utf8), receivedAt: t0),
            Row(topic: "dt/sensors/a/temperature", payload: Array("21.6".utf8), receivedAt: t0 + 1000),
            Row(topic: "dt/sensors/b/temperature", payload: Array("19.0".utf8), receivedAt: t0 + 2000, expiresAt: t0 + 5000),
            Row(topic: "dt/sensors/a/humidity", qos: 0, payload: [0, 1, 2], receivedAt: t0 + 3000),
            // A multi-byte topic: bytes count UTF-8 bytes, not characters.
            Row(topic: "dt/capteurs/é/température", payload: Array("x".utf8), receivedAt: t0 + 4000, expiresAt: t0 + 60_000),
            Row(topic: "dt/sensors/a/temperature", retain: true, payload: Array("21.7".utf8), receivedAt: t0 + 5000, mapping: "temp"),
        ])
    }

    @Test("stats: depth and bytes by QoS, ages, expiries, busiest topics")
    func statistics() throws {
        let fixture = try InspectionFixture()
        try Self.sample(fixture)
        let stats = try OutboxReader(paths: fixture.paths).statistics(now: EpochMillis(Self.t0 + 10_000))

        let bytes = try fixture.scalar("SELECT sum(length(CAST(topic AS BLOB)) + length(payload)) FROM message")
        #expect(stats.counters == OutboxCounts(messages: 6, bytes: bytes))
        #expect(stats.counted == stats.counters)
        #expect(stats.byQoS.map(\.qos) == [0, 1])
        let qos0 = try #require(stats.byQoS.first)
        #expect(qos0.count == OutboxCounts(messages: 1, bytes: "dt/sensors/a/humidity".utf8.count + 3))
        #expect(qos0.oldestReceivedAt == EpochMillis(Self.t0 + 3000))
        let qos1 = try #require(stats.byQoS.last)
        #expect(qos1.count.messages == 5)
        #expect(qos1.oldestReceivedAt == EpochMillis(Self.t0))
        #expect(qos1.newestReceivedAt == EpochMillis(Self.t0 + 5000))
        #expect(stats.oldestReceivedAt == EpochMillis(Self.t0))
        #expect(stats.newestReceivedAt == EpochMillis(Self.t0 + 5000))
        #expect(stats.withExpiry == 2)
        #expect(stats.expired == 1, "only the one that expired at t0+5s is past at t0+10s")

        #expect(stats.distinctTopics == 4)
        #expect(stats.topTopics.first == TopicDepth(
            topic: "dt/sensors/a/temperature",
            count: OutboxCounts(messages: 3, bytes: 3 * "dt/sensors/a/temperature".utf8.count + 12)
        ))
        let accented = try #require(stats.topTopics.first { $0.topic.hasPrefix("dt/capteurs") })
        #expect(accented.count.bytes == "dt/capteurs/é/température".utf8.count + 1)
        #expect(accented.count.bytes == 28, "UTF-8 bytes, not the 26 characters")
        // Ties ordered by topic, so the output is stable.
        #expect(stats.topTopics.dropFirst().map(\.topic) == [
            "dt/capteurs/é/température", "dt/sensors/a/humidity", "dt/sensors/b/temperature",
        ])
    }

    @Test("stats: the top list stops at its limit but still counts every topic")
    func topLimit() throws {
        let fixture = try InspectionFixture()
        try fixture.insert((0..<15).flatMap { topic in
            (0...topic).map { _ in InspectionFixture.Row(topic: "t/\(topic)", receivedAt: Self.t0) }
        })
        let stats = try OutboxReader(paths: fixture.paths).statistics(now: EpochMillis(Self.t0), topTopics: 10)
        #expect(stats.topTopics.count == 10)
        #expect(stats.topTopics.first?.topic == "t/14")
        #expect(stats.topTopics.first?.count.messages == 15)
        #expect(stats.topTopics.last?.topic == "t/5")
        #expect(stats.distinctTopics == 15)
    }

    @Test("stats on an empty outbox: zeros, no ages")
    func empty() throws {
        let fixture = try InspectionFixture()
        let stats = try OutboxReader(paths: fixture.paths).statistics(now: .now)
        #expect(stats.counters == .zero)
        #expect(stats.byQoS.isEmpty && stats.topTopics.isEmpty)
        #expect(stats.distinctTopics == 0)
        #expect(stats.oldestReceivedAt == nil)
        #expect(stats.expired == 0 && stats.withExpiry == 0)
        #expect(try OutboxReader(paths: fixture.paths).oldest(10).isEmpty)
    }

    @Test("peek: the oldest N in sending order, every field")
    func peek() throws {
        let fixture = try InspectionFixture()
        try Self.sample(fixture)
        let reader = try OutboxReader(paths: fixture.paths)
        let three = try reader.oldest(3)
        #expect(three.map(\.id) == [1, 2, 3])
        #expect(three[0] == InspectedMessage(
            id: 1, topic: "dt/sensors/a/temperature", qos: 1, retain: false, payload: Array("21.5".utf8),
            receivedAt: EpochMillis(Self.t0), mapping: "m", expiresAt: nil
        ))
        #expect(three[2].expiresAt == EpochMillis(Self.t0 + 5000))
        let all = try reader.oldest(100)
        #expect(all.count == 6)
        #expect(all.last?.retain == true)
        #expect(all.last?.mapping == "temp")
        #expect(all[3].payload == [0, 1, 2])
        #expect(try reader.counters() == OutboxCounts(messages: 6, bytes: all.reduce(0) { $0 + $1.storedSize }))
    }

    @Test("count(matching:) is what a purge would remove")
    func dryRun() throws {
        let fixture = try InspectionFixture()
        try Self.sample(fixture)
        let reader = try OutboxReader(paths: fixture.paths)
        let temperature = try reader.count(matching: TopicFilter("dt/sensors/+/temperature"))
        #expect(temperature.messages == 4)
        #expect(temperature.bytes == 3 * 24 + 12 + 24 + 4)
        #expect(try reader.count(matching: nil) == reader.counters())
        #expect(try reader.count(matching: TopicFilter("nothing/#")) == .zero)
    }

    @Test("reads beside a live writer: sees committed rows only and never waits for it")
    func besideWriter() throws {
        let fixture = try InspectionFixture()
        try Self.sample(fixture)
        let reader = try OutboxReader(paths: fixture.paths)
        // The "gateway" holds a write transaction open with an uncommitted
        // insert while the reader reads from its own connection.
        let writer = try DatabaseQueue(path: fixture.paths.database)
        try writer.inDatabase { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            try db.execute(sql: "INSERT INTO message (topic, qos, retain, payload, received_at, mapping) VALUES ('x', 1, 0, x'00', 0, 'm')")
            try db.execute(sql: "UPDATE outbox_stats SET messages = messages + 1, bytes = bytes + 2")
            let clock = ContinuousClock()
            let started = clock.now
            let stats = try reader.statistics(now: .now)
            let took = clock.now - started
            #expect(stats.counters.messages == 6)
            #expect(stats.counted == stats.counters)
            // Generous: a reader that waited on the writer would hit the 5 s busy timeout.
            #expect(took < .seconds(4), "the read took \(took)")
            try db.execute(sql: "COMMIT")
        }
        #expect(try reader.counters().messages == 7)
    }

    @Test("the reader cannot write")
    func readOnly() throws {
        let fixture = try InspectionFixture()
        try Self.sample(fixture)
        let database = try InspectionDatabase.open(fixture.paths, readOnly: true)
        #expect(throws: (any Error).self) {
            try database.writeWithoutTransaction { db in try db.execute(sql: "DELETE FROM message") }
        }
        #expect(try fixture.scalar("SELECT count(*) FROM message") == 6)
    }

    @Test("no database: 'no outbox at PATH', and none is created")
    func missing() throws {
        let fixture = try InspectionFixture(database: false)
        #expect(throws: InspectionError.noOutbox(path: fixture.paths.database)) {
            try OutboxReader(paths: fixture.paths)
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.paths.database))
        #expect(InspectionError.noOutbox(path: "/s/outbox.sqlite").description
            == "no outbox at /s/outbox.sqlite (the gateway has not run yet)")
    }

    @Test("a file that is not an outbox is named as such")
    func notAnOutbox() throws {
        let fixture = try InspectionFixture(database: false)
        _ = FileManager.default.createFile(atPath: fixture.paths.database, contents: Data("hello, not sqlite at all, really not".utf8))
        #expect(throws: InspectionError.notAnOutbox(path: fixture.paths.database, reason: "not a SQLite database")) {
            try OutboxReader(paths: fixture.paths)
        }
        try FileManager.default.removeItem(atPath: fixture.paths.database)
        let other = try DatabaseQueue(path: fixture.paths.database)
        try other.write { db in try db.execute(sql: "CREATE TABLE message (id INTEGER)") }
        try other.close()
        #expect(throws: InspectionError.notAnOutbox(path: fixture.paths.database, reason: "no table 'outbox_stats'")) {
            try OutboxReader(paths: fixture.paths)
        }
    }
}
