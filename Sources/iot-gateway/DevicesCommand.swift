import ArgumentParser
import GatewayCore

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "Add, list, disable, enable or remove devices in the registry files.",
        discussion: """
            The registry is the files devices.files names (relative to the configuration file). Edits keep the \
            files' comments and layout, are refused if they would make the registry invalid, and are safe while \
            the gateway runs: it picks them up within seconds by itself.
            """,
        subcommands: [Add.self, List.self, Disable.self, Enable.self, Remove.self]
    )
}

/// The registry a `devices` command works on, found through `--config`.
struct DevicesTarget {
    let config: GatewayConfig
    let store: RegistryStore

    static let reloadNote = "The running gateway picks the change up within seconds; no restart is needed."

    /// Loads the configuration without its registry (which may be missing or
    /// broken: these commands are how it gets fixed). Configuration problems
    /// are printed as `check-config` prints them, and exit 1.
    static func load(_ options: ConfigOption) throws -> DevicesTarget {
        let config: GatewayConfig
        do {
            config = try ConfigLoader.load(path: options.config, loadingRegistry: false)
        } catch {
            StandardError.write(options.explained(error).description)
            throw ExitCode(1)
        }
        return DevicesTarget(config: config, store: try run { () throws(RegistryEditError) in
            try RegistryStore(patterns: config.devices.files)
        })
    }

    /// Runs `body`; an error is printed (located problems as
    /// `FILE:LINE:COLUMN: message` lines, then `error: …`) and exits 1.
    static func run<T>(_ body: () throws(RegistryEditError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            if case .invalidRegistry(let issues, _) = error {
                for issue in issues { StandardError.write(issue.description) }
                let lines = error.description.split(separator: "\n")
                StandardError.write("error: \(lines.last ?? "")")
            } else {
                StandardError.write("error: \(error.description)")
            }
            throw ExitCode(1)
        }
    }

    func run<T>(_ body: () throws(RegistryEditError) -> T) throws -> T {
        try Self.run(body)
    }

    /// `devices/kitchen-1.yaml:2` for a change's file and line.
    static func place(_ change: RegistryChange) -> String {
        RegistryTarget.display(change.file) + (change.line.map { ":\($0)" } ?? "")
    }
}

/// The id argument of `disable`, `enable` and `remove`.
struct DeviceIDArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The device's id.", valueName: "id"))
    var id: String
}

extension DevicesCommand {
    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "disable",
            abstract: "Refuse a device's requests (4.03 / 403) while keeping its entry and credentials.",
            discussion: "Sets `disabled: true` in its entry. Exits 1 when no device has that id."
        )

        @OptionGroup var device: DeviceIDArgument
        @OptionGroup var options: ConfigOption

        func run() throws {
            try DevicesCommand.setDisabled(true, id: device.id, options: options)
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "enable",
            abstract: "Accept a disabled device's requests again.",
            discussion: "Sets `disabled: false` in its entry. Exits 1 when no device has that id."
        )

        @OptionGroup var device: DeviceIDArgument
        @OptionGroup var options: ConfigOption

        func run() throws {
            try DevicesCommand.setDisabled(false, id: device.id, options: options)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Delete a device's entry, and with it its credentials.",
            discussion: """
                Removes the entry's lines (and the comment lines directly above it). A file left with no device is \
                deleted, unless devices.files names it literally. Exits 1 when no device has that id.
                """
        )

        @OptionGroup var device: DeviceIDArgument
        @OptionGroup var options: ConfigOption

        func run() throws {
            let target = try DevicesTarget.load(options)
            let change = try target.run { () throws(RegistryEditError) in try target.store.remove(id: device.id) }
            let file = RegistryTarget.display(change.file)
            if change.kind == .deleted {
                print("removed device '\(device.id)': deleted \(file), which held only this device")
            } else {
                print("removed device '\(device.id)' from \(file)")
            }
            print(DevicesTarget.reloadNote)
        }
    }

    static func setDisabled(_ disabled: Bool, id: String, options: ConfigOption) throws {
        let target = try DevicesTarget.load(options)
        let change = try target.run { () throws(RegistryEditError) in try target.store.setDisabled(disabled, id: id) }
        let state = disabled ? "disabled" : "enabled"
        if change.kind == .unchanged {
            print("device '\(id)' is already \(state) (\(DevicesTarget.place(change))); nothing changed")
        } else {
            print("\(state) device '\(id)' (\(DevicesTarget.place(change)))")
            print(DevicesTarget.reloadNote)
        }
    }
}
