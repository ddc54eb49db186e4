import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

/// `queue recover`: what is readable of a damaged outbox goes, in order, to
/// a new one; the old files are kept aside.
@Suite("OutboxRecovery")
struct OutboxRecoveryTests {
    static func directory() throws -> StatePaths {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-recover-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let paths = StatePaths(directory: path)
        _ = FileManager.default.createFile(atPath: paths.lock, contents: nil)
        return paths
    }

    static func fill(_ paths: StatePaths, count: Int) throws {
        let store = try OutboxStore(path: paths.database, sync: .normal)
        let messages = (0..<count).map {
            OutboundMessage(topic: "t/\($0)", qos: .atLeastOnce, retain: false, payload: Array(repeating: UInt8($0 % 251), count: 200),
                            receivedAt: Date(timeIntervalSince1970: 1_800_000_000 + Double($0)), mapping: "m")
        }
        _ = try store.append(messages)
        try store.checkpoint()
    }

    static func topics(_ paths: StatePaths) throws -> [String] {
        try OutboxStore(path: paths.database, sync: .normal).fetch(after: 0, limit: 100_000).map(\.message.topic)
    }

    @Test("a file that is not a database: nothing to salvage, kept aside, a new empty outbox")
    func notADatabase() throws {
        let paths = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: paths.directory) }
        try Data((0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: paths.database))
        let report = try OutboxRecovery.recover(paths)
        #expect(report.salvaged == 0)
        #expect(FileManager.default.fileExists(atPath: report.keptAs))
        #expect(try Self.topics(paths).isEmpty)
    }

    @Test("a page overwritten in the middle: every other row is salvaged in order, the lost IDs are reported")
    func damagedPage() throws {
        let paths = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: paths.directory) }
        try Self.fill(paths, count: 3000)
        // Overwrite one page in the middle of the table.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: paths.database))
        let size = try handle.seekToEnd()
        let page = (size / 4096) / 2
        try handle.seek(toOffset: page * 4096)
        try handle.write(contentsOf: Data(repeating: 0xFF, count: 4096))
        try handle.close()

        let report = try OutboxRecovery.recover(paths)
        #expect(report.salvaged > 2900 && report.salvaged < 3000, "\(report)")
        #expect(!report.unreadable.isEmpty)
        let lost = report.unreadable.reduce(0) { $0 + $1.count }
        #expect(report.salvaged + lost == 3000, "\(report)")
        let topics = try Self.topics(paths)
        #expect(topics.count == report.salvaged)
        let numbers = topics.map { Int($0.dropFirst(2))! }
        #expect(numbers == numbers.sorted(), "order kept")
        #expect(FileManager.default.fileExists(atPath: report.keptAs))
    }

    @Test("a WAL cut in half (a torn write): the outbox opens, the commits before the cut are there and the counters match them")
    func truncatedWAL() throws {
        let paths = try Self.directory()
        let copy = try Self.directory()
        defer {
            try? FileManager.default.removeItem(atPath: paths.directory)
            try? FileManager.default.removeItem(atPath: copy.directory)
        }
        let store = try OutboxStore(path: paths.database, sync: .normal)
        for batch in 0..<40 {
            _ = try store.append((0..<50).map {
                OutboundMessage(topic: "t/\(batch * 50 + $0)", qos: .atLeastOnce, retain: false, payload: [1, 2, 3],
                                receivedAt: Date(), mapping: "m")
            })
        }
        // What a crash leaves: the database and a WAL nobody checkpointed.
        for suffix in ["", "-wal"] {
            try FileManager.default.copyItem(atPath: paths.database + suffix, toPath: copy.database + suffix)
        }
        withExtendedLifetime(store) {}
        let wal = try FileHandle(forUpdating: URL(fileURLWithPath: copy.database + "-wal"))
        let size = try wal.seekToEnd()
        try wal.truncate(atOffset: size / 2)
        try wal.close()

        let reopened = try OutboxStore(path: copy.database, sync: .normal)
        let rows = try reopened.fetch(after: 0, limit: 10_000)
        #expect(rows.count > 0 && rows.count < 2000, "\(rows.count)")
        #expect(try reopened.counts().messages == rows.count)
        #expect(rows.map(\.message.topic) == (0..<rows.count).map { "t/\($0)" }, "a prefix of the commits, none after a gap")
    }

    @Test("refused while a gateway holds the state directory")
    func refusedWhileRunning() throws {
        let paths = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: paths.directory) }
        try Self.fill(paths, count: 1)
        let held = try StateDirectory(path: paths.directory)
        #expect(throws: InspectionError.self) { _ = try OutboxRecovery.recover(paths) }
        withExtendedLifetime(held) {}
    }
}
