import ArgumentParser
import GatewayCore

extension DevicesCommand {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the registered devices: id, groups, state, credential kinds and where each is written.",
            discussion: """
                Never shows a secret or a hash. Exits 1, with one FILE:LINE:COLUMN: message line per problem, when \
                the registry is invalid (the gateway would refuse it).
                """
        )

        @OptionGroup var options: ConfigOption

        @Flag(name: .long, help: "Print one JSON object (snake_case keys) instead of text.")
        var json = false

        func run() throws {
            let target = try DevicesTarget.load(options)
            let loaded: LoadedRegistry
            do {
                loaded = try RegistryLoader.load(target.config.devices)
            } catch {
                StandardError.write(error.description)
                throw ExitCode(1)
            }
            for warning in loaded.warnings {
                StandardError.write("\(warning.location): warning: \(warning.message)")
            }
            let devices = loaded.registry.devices
            if json {
                print(DeviceListing.json(devices).text)
            } else if devices.isEmpty {
                let patterns = target.config.devices.files.map(RegistryTarget.display).joined(separator: ", ")
                print("no devices registered (devices.files: \(patterns)); add one with `iot-gateway devices add ID --psk|--token …`")
            } else {
                print(DeviceListing.text(devices))
            }
        }
    }
}

/// `devices list` output. Built from `Device` fields that hold no secret:
/// the PSK and token hash are only ever reduced to their kind.
enum DeviceListing {
    static func state(_ device: Device) -> String { device.disabled ? "disabled" : "enabled" }

    /// `FILE:LINE` of the entry.
    static func place(_ device: Device) -> String { "\(device.location.file):\(device.location.line)" }

    static func text(_ devices: [Device]) -> String {
        var table = TextTable([("id", .left), ("groups", .left), ("state", .left), ("credentials", .left), ("file", .left)])
        for device in devices {
            table.append([
                device.id,
                device.groups.isEmpty ? "-" : device.groups.joined(separator: ","),
                state(device),
                device.credentialKinds.isEmpty ? "none" : device.credentialKinds.joined(separator: ","),
                place(device),
            ])
        }
        let disabled = devices.filter(\.disabled).count
        return table.render() + "\n\(devices.count) device\(devices.count == 1 ? "" : "s")" + (disabled > 0 ? " (\(disabled) disabled)" : "")
    }

    static func json(_ devices: [Device]) -> JSONValue {
        .object([
            ("count", .int(devices.count)),
            ("devices", .array(devices.map { device in
                .object([
                    ("id", .string(device.id)),
                    ("groups", .array(device.groups.map(JSONValue.string))),
                    ("state", .string(state(device))),
                    ("disabled", .bool(device.disabled)),
                    ("credentials", .array(device.credentialKinds.map(JSONValue.string))),
                    ("file", .string(device.location.file)),
                    ("line", .int(device.location.line)),
                ])
            })),
        ])
    }
}
