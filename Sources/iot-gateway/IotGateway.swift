import ArgumentParser
import Foundation
import GatewayCore

@main
struct IotGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iot-gateway",
        abstract: "Takes CoAP and HTTP from devices, stores every message on disk, and forwards it to an MQTT broker over mutual TLS.",
        version: GatewayVersion.description,
        subcommands: [RunCommand.self, CheckConfigCommand.self, QueueCommand.self, DevicesCommand.self, OpenAPICommand.self]
    )
}

/// The `--config FILE` option every subcommand takes. Without it, the file
/// named by `$IOT_GATEWAY_CONFIG`, else the packaged location, so commands
/// typed on the box need no option.
struct ConfigOption: ParsableArguments {
    static let environmentVariable = "IOT_GATEWAY_CONFIG"
    static let defaultPath = "/etc/iot-gateway/gateway.yaml"

    @Option(name: .customLong("config"), help: ArgumentHelp(
        "Gateway configuration file (YAML). Default: $\(Self.environmentVariable) if set, else \(Self.defaultPath).",
        valueName: "file"
    ))
    var explicitPath: String?

    /// The file to read: `--config`, else `$IOT_GATEWAY_CONFIG`, else the default.
    var config: String {
        if let explicitPath { return explicitPath }
        if let fromEnvironment = ProcessInfo.processInfo.environment[Self.environmentVariable], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return Self.defaultPath
    }

    /// `error`, with a hint on where the file name came from when it was not
    /// given and the file cannot be read: "No such file" alone would not say
    /// that the default, or `$IOT_GATEWAY_CONFIG`, was tried.
    /// The configuration, or its errors on stderr and exit status 1.
    func load() throws -> GatewayConfig {
        do {
            return try ConfigLoader.load(path: config)
        } catch {
            StandardError.write(explained(error).description)
            throw ExitCode(1)
        }
    }

    func explained(_ error: ConfigError) -> ConfigError {
        guard explicitPath == nil else { return error }
        let fromEnvironment = config != Self.defaultPath
        let hint = fromEnvironment
            ? " (named by $\(Self.environmentVariable); --config FILE names another)"
            : " (the default, since neither --config nor $\(Self.environmentVariable) names a file)"
        var explained = error
        explained.issues = error.issues.map { issue in
            guard issue.location.file == config, issue.message.hasPrefix("cannot read file") else { return issue }
            return ConfigIssue(issue.message + hint, at: issue.location)
        }
        return explained
    }
}
