import Foundation

/// Where the gateway keeps its files inside its state directory.
///
/// These are `StateDirectory`'s rules, restated here because the operator
/// commands must find the files *without* taking the directory's lock the way
/// `StateDirectory` does (that would stop a running gateway from being
/// inspected).
public struct StatePaths: Sendable, Equatable {
    /// The state directory (`gateway.state_dir`).
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The outbox database, `<state_dir>/outbox.sqlite`.
    public var database: String { (directory as NSString).appendingPathComponent("outbox.sqlite") }

    /// The file a running gateway holds an exclusive `flock` on, `<state_dir>/lock`.
    public var lock: String { (directory as NSString).appendingPathComponent("lock") }
}
