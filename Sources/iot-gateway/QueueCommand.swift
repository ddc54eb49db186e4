import ArgumentParser
import GatewayCore
import GatewayStore

struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Inspect or purge the outbox of a gateway's state directory.",
        discussion: """
            stats and peek only read, and work while the gateway runs. purge needs the gateway stopped.
            The outbox is found with --state-dir DIR, or through the configuration (--config, $IOT_GATEWAY_CONFIG, \
            /etc/iot-gateway/gateway.yaml), of which only gateway.state_dir is read: the rest may be broken.
            QoS 0 messages wait in the running gateway's memory, not in the outbox; see /metrics on the admin listener.
            """,
        subcommands: [Stats.self, Peek.self, Purge.self, Recover.self]
    )
}

/// Where a queue command finds the outbox: `--state-dir`, or the
/// `gateway.state_dir` of the configuration.
struct QueueOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The gateway's state directory (holds outbox.sqlite). With it, no configuration is read.",
        valueName: "dir"
    ))
    var stateDir: String?

    @OptionGroup var configuration: ConfigOption

    func validate() throws {
        if stateDir != nil && configuration.explicitPath != nil {
            throw ValidationError("give --state-dir or --config, not both")
        }
    }
}

/// The state directory a queue command works on.
struct QueueTarget {
    let paths: StatePaths

    /// From `--state-dir`, or from only `gateway.state_dir` of the
    /// configuration: the rest of it may be broken (certificates, mapping
    /// files), which is exactly when an operator needs these commands. A
    /// configuration that cannot be read is printed as `check-config` prints
    /// problems (`FILE:LINE:COLUMN: error: message`) and exits 1.
    static func load(_ options: QueueOptions) throws -> QueueTarget {
        if let directory = options.stateDir {
            return QueueTarget(paths: StatePaths(directory: FilePaths.absolute(directory)))
        }
        do {
            let directory = try ConfigLoader.stateDirectory(path: options.configuration.config)
            return QueueTarget(paths: StatePaths(directory: directory))
        } catch {
            StandardError.write(options.configuration.explained(error).description)
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

    /// Where QoS 0 messages can be seen instead (the configuration is not
    /// read for the admin address: it may be broken).
    var metricsHint: String { "see /metrics on the admin listener (admin.listen)" }
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
