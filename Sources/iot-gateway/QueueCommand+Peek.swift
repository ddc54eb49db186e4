import ArgumentParser
import Foundation
import GatewayStore

extension QueueCommand {
    struct Peek: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "peek",
            abstract: "Show the oldest stored messages, in the order the gateway sends them.",
            discussion: """
                Read-only; safe while the gateway runs. Text payloads are shown escaped and cut after 60 characters, \
                others as a hex prefix; size is the payload's length in bytes. --json includes each payload in full (base64).
                """
        )

        @Argument(help: ArgumentHelp("How many messages to show.", valueName: "N"))
        var count: Int = 10

        @OptionGroup var options: QueueOptions

        @Flag(name: .long, help: "Print one JSON object (snake_case keys) instead of text.")
        var json = false

        func validate() throws {
            guard count >= 1 else { throw ValidationError("N must be at least 1") }
        }

        func run() throws {
            let target = try QueueTarget.load(options)
            let now = EpochMillis.now
            let (stored, messages) = try target.run { () throws(InspectionError) in
                let reader = try OutboxReader(paths: target.paths)
                return (try reader.counters(), try reader.oldest(count))
            }
            let report = PeekReport(database: target.paths.database, stored: stored, messages: messages, now: now)
            print(json ? report.json.text : report.text)
        }
    }
}

/// `queue peek` output, as text or JSON.
struct PeekReport {
    let database: String
    let stored: OutboxCounts
    let messages: [InspectedMessage]
    let now: EpochMillis

    var text: String {
        guard !messages.isEmpty else { return "the outbox is empty (\(database))" }
        var table = TextTable([
            ("id", .right), ("received_at", .left), ("age", .right), ("qos", .right), ("retain", .left),
            ("size", .right), ("topic", .left), ("mapping", .left), ("payload", .left),
        ])
        for message in messages {
            table.append([
                "\(message.id)", message.receivedAt.rfc3339,
                InspectionFormat.age(milliseconds: message.receivedAt.age(at: now)),
                "\(message.qos)", message.retain ? "yes" : "no", "\(message.payload.count)",
                DisplayText.escaped(message.topic), DisplayText.escaped(message.mapping),
                DisplayText.payload(message.payload),
            ])
        }
        return "oldest \(messages.count) of \(stored.messages) stored messages (\(database)):\n" + table.render()
    }

    var json: JSONValue {
        .object([
            ("database", .string(database)),
            ("now", .string(now.rfc3339)),
            ("stored_messages", .int(stored.messages)),
            ("messages", .array(messages.map { message in
                .object([
                    ("id", .int(message.id)),
                    ("received_at", .string(message.receivedAt.rfc3339)),
                    ("received_at_ms", .int(message.receivedAt.value)),
                    ("age_ms", .int(message.receivedAt.age(at: now))),
                    ("qos", .int(message.qos)),
                    ("retain", .bool(message.retain)),
                    ("topic", .string(message.topic)),
                    ("mapping", .string(message.mapping)),
                    ("size", .int(message.payload.count)),
                    ("stored_bytes", .int(message.storedSize)),
                    ("expires_at", .optional(message.expiresAt?.rfc3339)),
                    ("payload_base64", .string(Data(message.payload).base64EncodedString())),
                ])
            })),
        ])
    }
}
