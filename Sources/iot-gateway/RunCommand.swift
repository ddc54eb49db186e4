import ArgumentParser
import Foundation
import GatewayCore
import GatewayRuntime
import Logging
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the gateway in the foreground.",
        discussion: "Logs to standard error. SIGTERM or SIGINT stops it gracefully: ingress stops, pending commits finish, the MQTT connection closes cleanly."
    )

    @OptionGroup var options: ConfigOption

    /// The exit status for a state directory a restart cannot fix (sysexits' EX_DATAERR).
    static let unusableStateStatus: Int32 = 65

    func run() async throws {
        let config = try options.load()
        // Writes to a closed socket must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let level = Logger.Level(config.log.level)
        GatewayLogging.bootstrap(level: level)
        let logger = Logger(label: "iot-gateway")
        for warning in config.warnings {
            logger.warning("configuration adjusted", metadata: ["config.location": "\(warning.location)", "config.warning": "\(warning.message)"])
        }
        let gateway = Gateway(config: config, logger: logger)
        // SIGHUP re-reads the mappings and the device registry. Its default
        // action would end the process, so it is ignored and watched instead.
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { gateway.reload() }
        hangup.resume()
        defer { hangup.cancel() }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: gateway, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        do {
            try await group.run()
        } catch {
            logger.critical("gateway failed", metadata: ["error": "\(error)"])
            StandardError.write("error: \(error)")
            // EX_DATAERR: the unit's RestartPreventExitStatus stops systemd
            // from restarting into the same damaged or read-only state.
            if case .unusableState = error as? GatewayError { throw ExitCode(Self.unusableStateStatus) }
            throw ExitCode(1)
        }
    }
}

extension Logger.Level {
    init(_ level: LogLevel) {
        switch level {
        case .trace: self = .trace
        case .debug: self = .debug
        case .info: self = .info
        case .notice: self = .notice
        case .warning: self = .warning
        case .error: self = .error
        case .critical: self = .critical
        }
    }
}
