import ArgumentParser
import GatewayStore

extension QueueCommand {
    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "purge",
            abstract: "Delete stored messages: all, or those whose topic matches an MQTT topic filter.",
            discussion: """
                Needs the gateway stopped (systemctl stop iot-gateway): it is refused while the gateway holds the state \
                directory's lock, and holds that lock itself while it deletes, so the gateway cannot start meanwhile. \
                Without --yes it only prints what it would delete and exits 1.
                """
        )

        @OptionGroup var options: QueueOptions

        @Option(name: .long, help: ArgumentHelp(
            "Only messages whose topic matches this MQTT topic filter ('+' one level, '#' the rest).",
            valueName: "filter"
        ))
        var topic: String?

        @Flag(name: .long, help: "Really delete them.")
        var yes = false

        func validate() throws {
            if let topic {
                do {
                    _ = try TopicFilter(topic)
                } catch {
                    throw ValidationError(error.description)
                }
            }
        }

        func run() throws {
            let target = try QueueTarget.load(options)
            let filter = try topic.map { text throws(InspectionError) in try TopicFilter(text) }
            let scope = filter.map { "matching '\($0.text)'" } ?? "(all topics)"
            guard yes else {
                let (wouldPurge, presence) = try target.run { () throws(InspectionError) in
                    (try OutboxReader(paths: target.paths).count(matching: filter), try StateLock.probe(target.paths))
                }
                print("would purge \(QueueText.count(wouldPurge)) \(scope) from \(target.paths.database)")
                if case .running(let pid) = presence {
                    StandardError.write(InspectionError.gatewayRunning(stateDirectory: target.paths.directory, pid: pid).description)
                }
                StandardError.write("nothing purged: add --yes to purge them")
                throw ExitCode(1)
            }
            let purged = try target.run { () throws(InspectionError) in
                try OutboxPurger.purge(target.paths, matching: filter)
            }
            print("purged \(QueueText.count(purged)) \(scope) from \(target.paths.database)")
        }
    }
}
