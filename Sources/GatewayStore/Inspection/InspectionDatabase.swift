import Foundation
import GRDB

/// Opens the outbox database for the operator commands.
enum InspectionDatabase {
    /// - Parameter readOnly: true for everything that may run beside a live
    ///   gateway: SQLite then refuses any write on this connection, and as a
    ///   WAL reader it never blocks the gateway's writer.
    static func open(_ paths: StatePaths, readOnly: Bool) throws(InspectionError) -> DatabaseQueue {
        // Checked first because a read-write open would create an empty file.
        guard FileManager.default.fileExists(atPath: paths.database) else {
            throw .noOutbox(path: paths.database)
        }
        var configuration = Configuration()
        configuration.label = "outbox-inspection"
        configuration.readonly = readOnly
        // A reader waits only while the gateway recovers or restarts the WAL,
        // a purge while the database is busy; either is brief.
        configuration.busyMode = .timeout(5)
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: paths.database, configuration: configuration)
            let tables = try queue.read { db in try String.fetchSet(db, sql: InspectionSQL.tables) }
            for table in ["message", "outbox_stats"] where !tables.contains(table) {
                throw InspectionError.notAnOutbox(path: paths.database, reason: "no table '\(table)'")
            }
        } catch {
            throw map(error, path: paths.database)
        }
        return queue
    }

    static func map(_ error: any Error, path: String) -> InspectionError {
        if let error = error as? InspectionError { return error }
        if let error = error as? DatabaseError {
            if error.resultCode == .SQLITE_NOTADB {
                return .notAnOutbox(path: path, reason: "not a SQLite database")
            }
            return .database(path: path, reason: error.message ?? "\(error.resultCode)")
        }
        return .database(path: path, reason: "\(error)")
    }
}
