import ArgumentParser
import Foundation
import GatewayCore

struct OpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi",
        abstract: "Print the OpenAPI 3.1 description of the HTTP ingress and the admin API for a configuration.",
        discussion: """
            The document is generated from the configuration's mapping table and listeners, so it describes what \
            this gateway answers. The configuration is loaded as check-config loads it: problems are printed the same \
            way and exit 1. See docs/http-api.md.
            """
    )

    @OptionGroup var options: ConfigOption

    @Option(name: .customLong("output"), help: ArgumentHelp("Write the document to this file instead of standard output.", valueName: "file"))
    var output: String?

    func run() throws {
        let config = try options.load()
        if !config.warnings.isEmpty {
            StandardError.write(ConfigError(issues: [], warnings: config.warnings).description)
        }
        let text: String
        do {
            text = try OpenAPIGenerator(config: config).yaml()
        } catch {
            StandardError.write("\(options.config): \(error)")
            throw ExitCode(1)
        }
        guard let output else {
            FileHandle.standardOutput.write(Data(text.utf8))
            return
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            StandardError.write("cannot write \(output): \(error.localizedDescription)")
            throw ExitCode(1)
        }
    }
}
