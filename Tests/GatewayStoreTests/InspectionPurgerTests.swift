import Foundation
import GRDB
import Testing
@testable import GatewayStore
#if canImport(Glibc)
import Glibc
#endif

/// `queue purge` underneath: `OutboxPurger` and the state directory's lock.
@Suite("Inspection: purging and the gateway's lock")
struct InspectionPurgerTests {
    @Test("purge by filter removes just the matching rows and keeps outbox_stats in step")
    func byFilter() throws {
        let fixture = try InspectionFixture()
        try InspectionReaderTests.sample(fixture)
        try fixture.stopWriting()
        let purged = try OutboxPurger.purge(fixture.paths, matching: TopicFilter("dt/sensors/+/temperature"))
        #expect(purged == OutboxCounts(messages: 4, bytes: 3 * 24 + 12 + 24 + 4))
        #expect(try fixture.scalar("SELECT count(*) FROM message WHERE topic LIKE 'dt/sensors/%/temperature'") == 0)
        #expect(try fixture.scalar("SELECT count(*) FROM message") == 2)
        #expect(try fixture.scalar("SELECT messages FROM outbox_stats") == 2)
        #expect(try fixture.scalar("SELECT bytes FROM outbox_stats")
            == fixture.scalar("SELECT sum(length(CAST(topic AS BLOB)) + length(payload)) FROM message"))
        // Nothing left to match: a no-op.
        #expect(try OutboxPurger.purge(fixture.paths, matching: TopicFilter("dt/sensors/+/temperature")) == .zero)
        #expect(try fixture.scalar("SELECT messages FROM outbox_stats") == 2)
    }

    @Test("purge without a filter empties the outbox; row IDs keep growing afterwards")
    func all() throws {
        let fixture = try InspectionFixture()
        try InspectionReaderTests.sample(fixture)
        try fixture.stopWriting()
        let before = try fixture.scalar("SELECT bytes FROM outbox_stats")
        #expect(try OutboxPurger.purge(fixture.paths, matching: nil) == OutboxCounts(messages: 6, bytes: before))
        #expect(try fixture.scalar("SELECT count(*) FROM message") == 0)
        #expect(try fixture.scalar("SELECT messages FROM outbox_stats") == 0)
        #expect(try fixture.scalar("SELECT bytes FROM outbox_stats") == 0)
        // AUTOINCREMENT: the forwarder's "after row N" cursor stays valid.
        let queue = try DatabaseQueue(path: fixture.paths.database)
        let id = try queue.write { db -> Int64 in
            try db.execute(sql: "INSERT INTO message (topic, qos, retain, payload, received_at, mapping) VALUES ('t', 1, 0, x'00', 0, 'm')")
            return db.lastInsertedRowID
        }
        #expect(id == 7)
    }

    @Test("refused while the gateway holds the lock, with its pid; nothing deleted")
    func refusedWhileRunning() throws {
        let fixture = try InspectionFixture()
        try InspectionReaderTests.sample(fixture)
        do {
            // Play the gateway: an exclusive flock on a descriptor of our own.
            let gateway = try StateLock.acquire(fixture.paths)
            // The pid comes from /proc/locks; where the kernel does not say, nil.
            let presence = try StateLock.probe(fixture.paths)
            #expect(presence == .running(pid: getpid()) || presence == .running(pid: nil), "\(presence)")
            let refusal = #expect(throws: InspectionError.self) { try OutboxPurger.purge(fixture.paths, matching: nil) }
            #expect(refusal == .gatewayRunning(stateDirectory: fixture.paths.directory, pid: getpid())
                || refusal == .gatewayRunning(stateDirectory: fixture.paths.directory, pid: nil), "\(String(describing: refusal))")
            #expect(try fixture.scalar("SELECT count(*) FROM message") == 6)
            withExtendedLifetime(gateway) {}
        }
        #expect(try StateLock.probe(fixture.paths) == .stopped)
        let message = InspectionError.gatewayRunning(stateDirectory: "/var/lib/iot-gateway", pid: nil).description
        #expect(message == "the gateway is running on /var/lib/iot-gateway (pid unknown); stop it first: systemctl stop iot-gateway")
    }

    @Test("a purge holds the lock, so a gateway cannot start meanwhile; probes never block each other")
    func lockSemantics() throws {
        let fixture = try InspectionFixture(database: false)
        #expect(try StateLock.probe(fixture.paths) == .stopped)
        #expect(try StateLock.probe(fixture.paths) == .stopped, "a probe leaves nothing held")
        do {
            let purge = try StateLock.acquire(fixture.paths)
            #expect(throws: InspectionError.self) { try StateLock.acquire(fixture.paths) }
            withExtendedLifetime(purge) {}
        }
        // Released with the value: the gateway can lock again.
        let again = try StateLock.acquire(fixture.paths)
        withExtendedLifetime(again) {}
    }

    @Test("no database: 'no outbox at PATH'; no lock file: a clear refusal")
    func missingFiles() throws {
        let noDatabase = try InspectionFixture(database: false)
        #expect(throws: InspectionError.noOutbox(path: noDatabase.paths.database)) {
            try OutboxPurger.purge(noDatabase.paths, matching: nil)
        }
        #expect(!FileManager.default.fileExists(atPath: noDatabase.paths.database))

        let noLock = try InspectionFixture(lockFile: false)
        #expect(try StateLock.probe(noLock.paths) == .stopped)
        #expect(throws: InspectionError.lockFile(path: noLock.paths.lock, reason: "missing (start the gateway once to create it)")) {
            try OutboxPurger.purge(noLock.paths, matching: nil)
        }
    }

    /// Not a pass/fail speed check (tests never assert on wall-clock time):
    /// it proves the SQL works at a million rows and prints the figures.
    @Test("one million rows: stats, a dry run and a purge by filter, timed")
    func millionRows() async throws {
        // Seconds of SQLite work: on a thread of its own, off Swift's
        // cooperative pool, which has one thread per core and which every
        // other test in this process shares (a blocked pool thread stalled
        // integration tests on a 2-core CI machine past their timeouts).
        let run = try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try Self.runMillionRows() })
            }.start()
        }
        #expect(run.oldest.map(\.id) == Array(1...10))
        #expect(run.stats.counters.messages == 1_000_000)
        #expect(run.stats.counted == run.stats.counters)
        #expect(run.stats.distinctTopics == 2000)
        #expect(run.stats.topTopics.count == 10)
        #expect(run.stats.withExpiry == 100_000)
        #expect(run.stats.expired == 40_001, "expiry = receipt + 600 s: at t0 + 1000 s, rows 0, 10, …, 400000 are past it")
        #expect(run.purged == run.wouldPurge)
        #expect(run.purged.messages == 500_000)
        #expect(run.countedAfterPurge == 500_000)
        print("[inspection 1M] \(run.timings)")
    }

    struct MillionRun: Sendable {
        var stats: OutboxStatistics
        var oldest: [InspectedMessage]
        var wouldPurge: OutboxCounts
        var purged: OutboxCounts
        var countedAfterPurge: Int
        var timings: String
    }

    static func runMillionRows() throws -> MillionRun {
        let fixture = try InspectionFixture()
        let clock = ContinuousClock()
        let t0: Int64 = 1_760_000_000_000
        let fill = try clock.measure { try fixture.insertGenerated(1_000_000, firstReceivedAt: t0) }
        try fixture.stopWriting()

        let reader = try OutboxReader(paths: fixture.paths)
        var stats: OutboxStatistics?
        let statsTime = try clock.measure { stats = try reader.statistics(now: EpochMillis(t0 + 1_000_000)) }
        var oldest: [InspectedMessage] = []
        let peekTime = try clock.measure { oldest = try reader.oldest(10) }
        let filter = try TopicFilter("dt/sensors/+/temperature")
        var wouldPurge = OutboxCounts.zero
        let dryRunTime = try clock.measure { wouldPurge = try reader.count(matching: filter) }
        var purged = OutboxCounts.zero
        let purgeTime = try clock.measure { purged = try OutboxPurger.purge(fixture.paths, matching: filter) }
        guard let stats else { throw MissingStatistics() }
        return MillionRun(
            stats: stats, oldest: oldest, wouldPurge: wouldPurge, purged: purged,
            countedAfterPurge: try fixture.scalar("SELECT messages FROM outbox_stats"),
            timings: "fill \(fill), stats \(statsTime), peek 10 \(peekTime), "
                + "purge dry run \(dryRunTime), purge 500k by filter \(purgeTime)"
        )
    }
}

private struct MissingStatistics: Error {}
