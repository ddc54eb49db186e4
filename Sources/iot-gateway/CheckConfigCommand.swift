import ArgumentParser
import Foundation
import GatewayCore

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration and its mapping files.",
        discussion: """
            Exits 0 when valid (warnings, if any, on standard error). Otherwise exits 1. Every problem is one line, \
            FILE:LINE:COLUMN: error: message or FILE:LINE:COLUMN: warning: message, in file order; warnings are shown \
            with the errors, as one may explain another.
            """
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        do {
            let config = try ConfigLoader.load(path: options.config)
            if !config.warnings.isEmpty {
                StandardError.write(ConfigError(issues: [], warnings: config.warnings).description)
            }
            print("\(options.config): OK (\(config.mappings.count) mapping\(config.mappings.count == 1 ? "" : "s"))")
        } catch {
            StandardError.write(options.explained(error).description)
            throw ExitCode(1)
        }
    }
}

enum StandardError {
    static func write(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
