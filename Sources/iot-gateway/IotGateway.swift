import ArgumentParser
import GatewayCore

@main
struct IotGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iot-gateway",
        abstract: "Takes CoAP and HTTP from devices, stores every message on disk, and forwards it to an MQTT broker over mutual TLS.",
        version: GatewayVersion.description,
        subcommands: [RunCommand.self, CheckConfigCommand.self, QueueCommand.self, DevicesCommand.self]
    )
}

/// The `--config FILE` option every subcommand takes.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Gateway configuration file (YAML).", valueName: "file"))
    var config: String
}
