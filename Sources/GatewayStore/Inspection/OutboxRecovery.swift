import Foundation
import GRDB
import GatewayCore

/// What `queue recover` did.
public struct RecoveryReport: Sendable, Equatable {
    /// Rows read from the damaged database and written to the new outbox.
    public var salvaged: Int
    /// Ranges of row IDs that could not be read (first, last).
    public var unreadable: [ClosedRange<Int64>]
    /// Where the damaged files were moved (the database; -wal and -shm beside it).
    public var keptAs: String
}

/// Salvages what is readable from a damaged outbox into a new one and keeps
/// the old files aside, so a gateway that refused to start on them starts
/// again with nothing readable lost. Needs the gateway stopped (it holds the
/// state directory's lock meanwhile).
public enum OutboxRecovery {
    static let batch: Int64 = 1000

    public static func recover(_ paths: StatePaths, now: Date = Date()) throws(InspectionError) -> RecoveryReport {
        let lock = try StateLock.acquire(paths)
        defer { withExtendedLifetime(lock) {} }
        guard FileManager.default.fileExists(atPath: paths.database) else { throw .noOutbox(path: paths.database) }
        var unreadable: [ClosedRange<Int64>] = []
        let rows = salvage(paths, unreadable: &unreadable)

        let stamp = ISO8601DateFormatter.string(from: now, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withYear, .withMonth, .withDay, .withTime, .withTimeZone])
            .replacingOccurrences(of: ":", with: "")
        let keptAs = paths.database + ".damaged-" + stamp
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: paths.database + suffix) {
            do {
                try FileManager.default.moveItem(atPath: paths.database + suffix, toPath: keptAs + suffix)
            } catch {
                throw .database(path: paths.database + suffix, reason: "cannot move it aside: \(error.localizedDescription)")
            }
        }
        do {
            let store = try OutboxStore(path: paths.database, sync: .full)
            var start = 0
            while start < rows.count {
                let end = min(rows.count, start + Int(batch))
                _ = try store.append(Array(rows[start..<end]))
                start = end
            }
        } catch {
            throw .database(path: paths.database, reason: "the new outbox could not be written: \(error)")
        }
        return RecoveryReport(salvaged: rows.count, unreadable: unreadable, keptAs: keptAs)
    }

    /// Reads rows in ID order, a batch at a time; a batch that fails is read
    /// row by row, and a row that fails is skipped (and reported).
    static func salvage(_ paths: StatePaths, unreadable: inout [ClosedRange<Int64>]) -> [OutboundMessage] {
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: paths.database, configuration: configuration),
              let last = try? queue.read({ db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM message") ?? 0 })
        else {
            return []
        }
        var messages: [OutboundMessage] = []
        var cursor: Int64 = 0
        func note(_ id: Int64) {
            if let previous = unreadable.last, previous.upperBound == id - 1 {
                unreadable[unreadable.count - 1] = previous.lowerBound...id
            } else {
                unreadable.append(id...id)
            }
        }
        while cursor < last {
            let upper = min(last, cursor + batch)
            if let rows = try? queue.read({ db in
                try Row.fetchAll(db, sql: OutboxSchema.fetchSQL, arguments: [cursor, upper, batch]).map(OutboxStore.decode)
            }) {
                messages += rows.map(\.message)
            } else {
                for id in (cursor + 1)...upper {
                    switch Result(catching: { try queue.read { db in try Row.fetchOne(db, sql: OutboxSchema.fetchByIDSQL.replacingOccurrences(of: "%IDS%", with: "\(id)")) } }) {
                    case .success(let row?): messages.append(OutboxStore.decode(row).message)
                    case .success(nil): continue
                    case .failure: note(id)
                    }
                }
            }
            cursor = upper
        }
        return messages
    }
}
