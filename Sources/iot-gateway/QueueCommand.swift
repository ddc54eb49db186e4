import ArgumentParser
import GatewayCore
import GatewayStore

struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Inspect or purge the outbox of a gateway's state directory.",
        discussion: """
            stats and peek only read, and work while the gateway runs. purge needs the gateway stopped.
            QoS 0 messages wait in the running gateway's memory, not in the outbox; see /metrics on the admin listener.
            """,
        subcommands: [Stats.self, Peek.self, Purge.self, Recover.self]
    )
}

/// The state directory a queue command works on, found through `--config`.
struct QueueTarget {
    let config: GatewayConfig
    let paths: StatePaths

    /// Loads the configuration; on failure prints its problems as
    /// `check-config` does (`FILE:LINE:COLUMN: message`) and exits 1.
    static func load(_ options: ConfigOption) throws -> QueueTarget {
        do {
            let config = try ConfigLoader.load(path: options.config)
            return QueueTarget(config: config, paths: StatePaths(directory: config.gateway.stateDirectory))
        } catch {
            StandardError.write(error.description)
            throw ExitCode(1)
        }
    }

    /// Runs `body`; an inspection error is printed as `error: …` and exits 1.
    func run<T>(_ body: () throws(InspectionError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            StandardError.write("error: \(error.description)")
            throw ExitCode(1)
        }
    }

    /// Where `/metrics` is, for the QoS 0 note.
    var metricsHint: String {
        guard let address = config.admin.listen.first else { return "the admin listener is off (admin.listen)" }
        return "see /metrics on the admin listener (\(address))"
    }
}

/// Text shared by the queue commands.
enum QueueText {
    static let qos0Note = "QoS 0 messages wait in the running gateway's memory and are not in this database"

    /// `12 messages (345 B)`.
    static func count(_ count: OutboxCounts) -> String {
        "\(count.messages) message\(count.messages == 1 ? "" : "s") (\(InspectionFormat.bytes(count.bytes)))"
    }

    static func presence(_ presence: GatewayPresence) -> String {
        switch presence {
        case .stopped: return "not running"
        case .running(let pid): return "running (\(pid.map { "pid \($0)" } ?? "pid unknown"))"
        }
    }
}
