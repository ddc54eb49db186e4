import ArgumentParser
import Foundation
import GatewayCore

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration and its mapping files.",
        discussion: "Exits 0 when valid. Otherwise prints one line per problem as FILE:LINE:COLUMN: message and exits 1."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        do {
            let config = try ConfigLoader.load(path: options.config)
            for warning in config.warnings {
                StandardError.write("\(warning.location): warning: \(warning.message)")
            }
            print("\(options.config): OK (\(config.mappings.count) mapping\(config.mappings.count == 1 ? "" : "s"))")
        } catch {
            StandardError.write(error.description)
            throw ExitCode(1)
        }
    }
}

enum StandardError {
    static func write(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
