import ArgumentParser
import GatewayStore

extension QueueCommand {
    struct Recover: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "recover",
            abstract: "Salvage a damaged outbox: copy every readable message into a new one, keep the old file aside.",
            discussion: """
                For a gateway that stopped with 'outbox database … is damaged' (exit status 65). Needs the gateway \
                stopped. The old database (with its -wal and -shm) is renamed outbox.sqlite.damaged-<time>; what could \
                be read is written, in its order, to a new outbox.sqlite. Without --yes it only says what it would do \
                and exits 1.
                """
        )

        @OptionGroup var options: QueueOptions

        @Flag(name: .long, help: "Really move the old database aside and write the new one.")
        var yes = false

        func run() throws {
            let target = try QueueTarget.load(options)
            guard yes else {
                print("would salvage the readable messages of \(target.paths.database) into a new outbox and keep the old file aside")
                StandardError.write("nothing changed: add --yes to recover")
                throw ExitCode(1)
            }
            let report = try target.run { () throws(InspectionError) in try OutboxRecovery.recover(target.paths) }
            print("salvaged \(report.salvaged) message\(report.salvaged == 1 ? "" : "s") into a new \(target.paths.database)")
            print("the damaged database is kept as \(report.keptAs)")
            if !report.unreadable.isEmpty {
                let ids = report.unreadable.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
                print("unreadable row IDs (lost): \(ids.joined(separator: ", "))")
            }
        }
    }
}
