import ArgumentParser
import GatewayStore

extension QueueCommand {
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats",
            abstract: "Show what the outbox holds: depth by QoS, bytes, ages, expiries, busiest topics.",
            discussion: "Read-only; safe while the gateway runs. Exits 1 when there is no outbox yet, or gateway.state_dir cannot be read from the configuration."
        )

        @OptionGroup var options: QueueOptions

        @Flag(name: .long, help: "Print one JSON object (snake_case keys) instead of text.")
        var json = false

        func run() throws {
            let target = try QueueTarget.load(options)
            let now = EpochMillis.now
            let (presence, statistics) = try target.run { () throws(InspectionError) in
                let presence = try StateLock.probe(target.paths)
                let statistics = try OutboxReader(paths: target.paths).statistics(now: now, topTopics: 10)
                return (presence, statistics)
            }
            let report = StatsReport(target: target, presence: presence, statistics: statistics, now: now)
            print(json ? report.json.text : report.text)
        }
    }
}

/// `queue stats` output, as text or JSON.
struct StatsReport {
    let target: QueueTarget
    let presence: GatewayPresence
    let statistics: OutboxStatistics
    let now: EpochMillis

    var text: String {
        var lines: [(String, String)] = [
            ("state directory", target.paths.directory),
            ("gateway", QueueText.presence(presence)),
            ("stored", QueueText.count(statistics.counters)),
        ]
        for depth in statistics.byQoS {
            let age = InspectionFormat.age(milliseconds: depth.oldestReceivedAt.age(at: now))
            lines.append(("  qos \(depth.qos)", "\(QueueText.count(depth.count)), oldest \(age) old"))
        }
        if let oldest = statistics.oldestReceivedAt, let newest = statistics.newestReceivedAt {
            lines.append(("oldest", "\(oldest.rfc3339) (\(InspectionFormat.age(milliseconds: oldest.age(at: now))) ago)"))
            lines.append(("newest", "\(newest.rfc3339) (\(InspectionFormat.age(milliseconds: newest.age(at: now))) ago)"))
        }
        lines.append(("with expiry", "\(statistics.withExpiry) (\(statistics.expired) already expired; the gateway drops those unsent)"))
        lines.append(("topics", "\(statistics.distinctTopics)"))
        let width = lines.map(\.0.count).max() ?? 0
        var output = lines.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }

        if statistics.counted != statistics.counters {
            output.append("warning: outbox_stats counts \(QueueText.count(statistics.counters)) but the table holds \(QueueText.count(statistics.counted))")
        }
        if !statistics.topTopics.isEmpty {
            output.append("")
            output.append("top \(statistics.topTopics.count) of \(statistics.distinctTopics) topics by messages:")
            var table = TextTable([("messages", .right), ("bytes", .right), ("topic", .left)])
            for topic in statistics.topTopics {
                table.append(["\(topic.count.messages)", InspectionFormat.bytes(topic.count.bytes), DisplayText.escaped(topic.topic)])
            }
            output.append(table.render(indent: "  "))
        }
        output.append("")
        output.append("note: \(QueueText.qos0Note); \(target.metricsHint).")
        return output.joined(separator: "\n")
    }

    var json: JSONValue {
        let pid: Int64? = if case .running(let pid) = presence { pid.map(Int64.init) } else { nil }
        let oldest = statistics.oldestReceivedAt, newest = statistics.newestReceivedAt
        return .object([
            ("state_dir", .string(target.paths.directory)),
            ("database", .string(target.paths.database)),
            ("now", .string(now.rfc3339)),
            ("gateway_running", .bool(presence != .stopped)),
            ("gateway_pid", .optional(pid)),
            ("messages", .int(statistics.counters.messages)),
            ("bytes", .int(statistics.counters.bytes)),
            ("counted_messages", .int(statistics.counted.messages)),
            ("counted_bytes", .int(statistics.counted.bytes)),
            ("by_qos", .array(statistics.byQoS.map { depth in
                .object([
                    ("qos", .int(depth.qos)),
                    ("messages", .int(depth.count.messages)),
                    ("bytes", .int(depth.count.bytes)),
                    ("oldest_received_at", .string(depth.oldestReceivedAt.rfc3339)),
                    ("oldest_age_ms", .int(depth.oldestReceivedAt.age(at: now))),
                    ("with_expiry", .int(depth.withExpiry)),
                    ("expired", .int(depth.expired)),
                ])
            })),
            ("oldest_received_at", .optional(oldest?.rfc3339)),
            ("oldest_age_ms", .optional(oldest?.age(at: now))),
            ("newest_received_at", .optional(newest?.rfc3339)),
            ("newest_age_ms", .optional(newest?.age(at: now))),
            ("with_expiry", .int(statistics.withExpiry)),
            ("expired", .int(statistics.expired)),
            ("distinct_topics", .int(statistics.distinctTopics)),
            ("top_topics", .array(statistics.topTopics.map { topic in
                .object([
                    ("topic", .string(topic.topic)),
                    ("messages", .int(topic.count.messages)),
                    ("bytes", .int(topic.count.bytes)),
                ])
            })),
            ("note", .string("\(QueueText.qos0Note); \(target.metricsHint)")),
        ])
    }
}
