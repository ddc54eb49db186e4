/// Why an operator command could not inspect or purge the outbox.
public enum InspectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No database at the path: the gateway never ran with this state directory.
    case noOutbox(path: String)
    /// The file exists but is not an outbox the gateway wrote.
    case notAnOutbox(path: String, reason: String)
    /// A gateway (or another purge) holds the state directory's lock.
    /// `pid` is nil when the holder cannot be found out.
    case gatewayRunning(stateDirectory: String, pid: Int32?)
    /// The lock file cannot be opened or locked.
    case lockFile(path: String, reason: String)
    /// SQLite refused a read or the purge.
    case database(path: String, reason: String)
    /// `--topic` is not a valid MQTT topic filter.
    case invalidTopicFilter(filter: String, reason: String)

    public var description: String {
        switch self {
        case .noOutbox(let path):
            return "no outbox at \(path) (the gateway has not run yet)"
        case .notAnOutbox(let path, let reason):
            return "\(path) is not an iot-gateway outbox: \(reason)"
        case .gatewayRunning(let directory, let pid):
            let holder = pid.map { "pid \($0)" } ?? "pid unknown"
            return "the gateway is running on \(directory) (\(holder)); stop it first: systemctl stop iot-gateway"
        case .lockFile(let path, let reason):
            return "lock file \(path): \(reason)"
        case .database(let path, let reason):
            return "outbox database \(path): \(reason)"
        case .invalidTopicFilter(let filter, let reason):
            return "invalid topic filter '\(filter)': \(reason)"
        }
    }
}
