import Foundation
import GatewayCore
@testable import GatewayRuntime
import Prometheus
import Testing

/// The Prometheus observer: exact lines after each observer call, on a
/// registry of the test's own.
@Suite("Prometheus metrics")
struct MetricsTests {
    static let empty = OutboxSnapshot(
        qos0: .init(messages: 0, bytes: 0, oldestAge: 0),
        qos1: .init(messages: 0, bytes: 0, oldestAge: 0)
    )

    /// The scrape's lines, for exact matching.
    static func lines(_ observer: PrometheusObserver, _ snapshot: OutboxSnapshot = empty) -> Set<String> {
        Set(text(observer, snapshot).split(separator: "\n").map(String.init))
    }

    static func text(_ observer: PrometheusObserver, _ snapshot: OutboxSnapshot = empty) -> String {
        String(decoding: observer.render(snapshot: snapshot), as: UTF8.self)
    }

    @Test func everySeriesExistsAtZeroBeforeAnyEvent() throws {
        let lines = Self.lines(PrometheusObserver())
        for proto in ["coap", "http"] {
            for outcome in [
                "accepted", "delivered", "not_found", "method_not_allowed", "bad_request",
                "payload_too_large", "unavailable", "timeout", "internal_error",
            ] {
                #expect(lines.contains(#"iotgw_requests_total{protocol="\#(proto)",outcome="\#(outcome)"} 0"#))
            }
        }
        for qos in ["0", "1"] {
            #expect(lines.contains(#"iotgw_outbox_messages{qos="\#(qos)"} 0.0"#))
            #expect(lines.contains(#"iotgw_outbox_bytes{qos="\#(qos)"} 0.0"#))
            #expect(lines.contains(#"iotgw_outbox_oldest_age_seconds{qos="\#(qos)"} 0.0"#))
            #expect(lines.contains(#"iotgw_messages_accepted_total{qos="\#(qos)"} 0"#))
            #expect(lines.contains(#"iotgw_messages_delivered_total{qos="\#(qos)"} 0"#))
            #expect(lines.contains(#"iotgw_messages_expired_total{qos="\#(qos)"} 0"#))
            for reason in ["offline", "rejected"] {
                #expect(lines.contains(#"iotgw_messages_dropped_total{reason="\#(reason)",qos="\#(qos)"} 0"#))
            }
        }
        #expect(lines.contains(#"iotgw_messages_refused_total{reason="full"} 0"#))
        #expect(lines.contains(#"iotgw_messages_refused_total{reason="stopping"} 0"#))
        #expect(lines.contains("iotgw_messages_resent_total 0"))
        #expect(lines.contains("iotgw_messages_shed_total 0"))
        #expect(lines.contains("iotgw_upstream_connected 0.0"))
        #expect(lines.contains("iotgw_upstream_reconnects_total 0"))
        for histogram in ["iotgw_commit_batch_size", "iotgw_commit_duration_seconds", "iotgw_delivery_latency_seconds"] {
            #expect(lines.contains("# TYPE \(histogram) histogram"))
            #expect(lines.contains("\(histogram)_count 0"))
            #expect(lines.contains(#"\#(histogram)_bucket{le="+Inf"} 0"#))
        }
    }

    @Test func requestsAreCountedByProtocolAndOutcome() {
        let observer = PrometheusObserver()
        observer.requestAnswered(protocol: .coap, outcome: .accepted)
        observer.requestAnswered(protocol: .coap, outcome: .accepted)
        observer.requestAnswered(protocol: .http, outcome: .payloadTooLarge)
        observer.requestAnswered(protocol: .http, outcome: .timeout)
        let lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_requests_total{protocol="coap",outcome="accepted"} 2"#))
        #expect(lines.contains(#"iotgw_requests_total{protocol="http",outcome="accepted"} 0"#))
        #expect(lines.contains(#"iotgw_requests_total{protocol="http",outcome="payload_too_large"} 1"#))
        #expect(lines.contains(#"iotgw_requests_total{protocol="http",outcome="timeout"} 1"#))
    }

    /// A label value nobody planned for is a bug elsewhere: counted, but
    /// under one `other` series, never as a new series per value.
    @Test func unknownLabelValuesFallBackToOther() {
        let observer = PrometheusObserver()
        observer.messageRefused(reason: "tired")
        observer.messagesDropped(reason: "lost", qos: .atLeastOnce, count: 3)
        let lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_messages_refused_total{reason="other"} 1"#))
        #expect(lines.contains(#"iotgw_messages_dropped_total{reason="other",qos="1"} 3"#))
        #expect(!lines.contains { $0.contains("tired") || $0.contains("lost") })
    }

    @Test func deliveriesCountAndFeedTheLatencyHistogram() throws {
        let observer = PrometheusObserver()
        observer.messagesDelivered(qos: .atLeastOnce, latencies: [0.01, 0.02])
        var lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_messages_delivered_total{qos="1"} 2"#))
        #expect(lines.contains("iotgw_delivery_latency_seconds_count 2"))
        #expect(lines.contains(#"iotgw_delivery_latency_seconds_bucket{le="0.005"} 0"#))
        #expect(lines.contains(#"iotgw_delivery_latency_seconds_bucket{le="0.01"} 1"#))
        #expect(lines.contains(#"iotgw_delivery_latency_seconds_bucket{le="0.025"} 2"#))
        #expect(lines.contains(#"iotgw_delivery_latency_seconds_bucket{le="60.0"} 2"#))
        #expect(lines.contains(#"iotgw_delivery_latency_seconds_bucket{le="+Inf"} 2"#))
        let sum = try #require(Self.value(of: "iotgw_delivery_latency_seconds_sum", in: lines))
        #expect(abs(sum - 0.03) < 1e-9)

        // QoS 0 has no PUBACK: counted as delivered, not timed.
        observer.messagesDelivered(qos: .atMostOnce, latencies: [0.5, 0.5, 0.5])
        // Past the last bucket, a negative value (clock step) and NaN.
        observer.messagesDelivered(qos: .atLeastOnce, latencies: [120, -1, .nan])
        lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_messages_delivered_total{qos="0"} 3"#))
        #expect(lines.contains(#"iotgw_messages_delivered_total{qos="1"} 5"#))
        #expect(lines.contains("iotgw_delivery_latency_seconds_count 4"))
        #expect(lines.contains(#"iotgw_delivery_latency_seconds_bucket{le="0.001"} 1"#))
        #expect(lines.contains(#"iotgw_delivery_latency_seconds_bucket{le="60.0"} 3"#))
        #expect(lines.contains(#"iotgw_delivery_latency_seconds_bucket{le="+Inf"} 4"#))
    }

    @Test func messageCountersFollowTheirCalls() {
        let observer = PrometheusObserver()
        observer.messageAccepted(qos: .atLeastOnce)
        observer.messageAccepted(qos: .atLeastOnce)
        observer.messageAccepted(qos: .atMostOnce)
        observer.messagesResent(count: 7)
        observer.messagesExpired(qos: .atMostOnce, count: 4)
        observer.messagesShed(count: 5)
        observer.messageRefused(reason: "full")
        observer.messageRefused(reason: "stopping")
        observer.messageRefused(reason: "full")
        observer.messagesDropped(reason: "offline", qos: .atMostOnce, count: 6)
        observer.messagesDropped(reason: "rejected", qos: .atLeastOnce, count: 1)
        // Zero and negative counts change nothing (and do not trap).
        observer.messagesResent(count: 0)
        observer.messagesShed(count: -2)
        observer.messagesExpired(qos: .atLeastOnce, count: -1)
        let lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_messages_accepted_total{qos="1"} 2"#))
        #expect(lines.contains(#"iotgw_messages_accepted_total{qos="0"} 1"#))
        #expect(lines.contains("iotgw_messages_resent_total 7"))
        #expect(lines.contains(#"iotgw_messages_expired_total{qos="0"} 4"#))
        #expect(lines.contains(#"iotgw_messages_expired_total{qos="1"} 0"#))
        #expect(lines.contains("iotgw_messages_shed_total 5"))
        #expect(lines.contains(#"iotgw_messages_refused_total{reason="full"} 2"#))
        #expect(lines.contains(#"iotgw_messages_refused_total{reason="stopping"} 1"#))
        #expect(lines.contains(#"iotgw_messages_dropped_total{reason="offline",qos="0"} 6"#))
        #expect(lines.contains(#"iotgw_messages_dropped_total{reason="offline",qos="1"} 0"#))
        #expect(lines.contains(#"iotgw_messages_dropped_total{reason="rejected",qos="1"} 1"#))
    }

    @Test func reconnectsAreConnectionsAfterTheFirst() {
        let observer = PrometheusObserver()
        observer.upstreamConnection(0, connected: false)
        #expect(Self.lines(observer).contains("iotgw_upstream_reconnects_total 0"))
        observer.upstreamConnection(0, connected: true)
        var lines = Self.lines(observer)
        #expect(lines.contains("iotgw_upstream_connected 1.0"))
        #expect(lines.contains("iotgw_upstream_reconnects_total 0"))
        // A repeated report of the same connection is not a reconnect.
        observer.upstreamConnection(0, connected: true)
        #expect(Self.lines(observer).contains("iotgw_upstream_reconnects_total 0"))
        observer.upstreamConnection(0, connected: false)
        lines = Self.lines(observer)
        #expect(lines.contains("iotgw_upstream_connected 0.0"))
        observer.upstreamConnection(0, connected: true)
        observer.upstreamConnection(0, connected: false)
        observer.upstreamConnection(0, connected: false)
        observer.upstreamConnection(0, connected: true)
        lines = Self.lines(observer)
        #expect(lines.contains("iotgw_upstream_connected 1.0"))
        #expect(lines.contains("iotgw_upstream_reconnects_total 2"))
    }

    @Test func commitsFeedBatchSizeAndDuration() {
        let observer = PrometheusObserver()
        observer.commitFinished(messages: 3, deletions: 0, seconds: 0.0002)
        observer.commitFinished(messages: 2048, deletions: 10, seconds: 0.004)
        // Deletions alone: timed, but not a batch of messages.
        observer.commitFinished(messages: 0, deletions: 5, seconds: 0.00004)
        let lines = Self.lines(observer)
        #expect(lines.contains("iotgw_commit_batch_size_count 2"))
        #expect(lines.contains(#"iotgw_commit_batch_size_bucket{le="1.0"} 0"#))
        #expect(lines.contains(#"iotgw_commit_batch_size_bucket{le="2.0"} 0"#))
        #expect(lines.contains(#"iotgw_commit_batch_size_bucket{le="4.0"} 1"#))
        #expect(lines.contains(#"iotgw_commit_batch_size_bucket{le="1024.0"} 1"#))
        #expect(lines.contains(#"iotgw_commit_batch_size_bucket{le="2048.0"} 2"#))
        #expect(lines.contains("iotgw_commit_batch_size_sum 2051.0"))
        #expect(lines.contains("iotgw_commit_duration_seconds_count 3"))
        #expect(lines.contains(#"iotgw_commit_duration_seconds_bucket{le="5e-05"} 1"#))
        #expect(lines.contains(#"iotgw_commit_duration_seconds_bucket{le="0.0001"} 1"#))
        #expect(lines.contains(#"iotgw_commit_duration_seconds_bucket{le="0.00025"} 2"#))
        #expect(lines.contains(#"iotgw_commit_duration_seconds_bucket{le="0.005"} 3"#))
        #expect(lines.contains(#"iotgw_commit_duration_seconds_bucket{le="1.0"} 3"#))
    }

    @Test func outboxGaugesComeFromTheSnapshot() {
        let observer = PrometheusObserver()
        let snapshot = OutboxSnapshot(
            qos0: .init(messages: 3, bytes: 120, oldestAge: 0.5),
            qos1: .init(messages: 1_000_000, bytes: 64_000_000, oldestAge: 3600)
        )
        var lines = Self.lines(observer, snapshot)
        #expect(lines.contains(#"iotgw_outbox_messages{qos="0"} 3.0"#))
        #expect(lines.contains(#"iotgw_outbox_bytes{qos="0"} 120.0"#))
        #expect(lines.contains(#"iotgw_outbox_oldest_age_seconds{qos="0"} 0.5"#))
        #expect(lines.contains(#"iotgw_outbox_messages{qos="1"} 1000000.0"#))
        #expect(lines.contains(#"iotgw_outbox_bytes{qos="1"} 64000000.0"#))
        #expect(lines.contains(#"iotgw_outbox_oldest_age_seconds{qos="1"} 3600.0"#))
        // Each scrape shows its own snapshot.
        lines = Self.lines(observer, Self.empty)
        #expect(lines.contains(#"iotgw_outbox_messages{qos="1"} 0.0"#))
    }

    /// Every line is a HELP, a TYPE or a sample of a declared family, with
    /// well-formed labels and a number; histograms are cumulative.
    @Test func theTextFormatParses() throws {
        let observer = PrometheusObserver(connections: 2, mappings: [("temps", .atLeastOnce)])
        observer.requestAnswered(protocol: .coap, outcome: .accepted)
        observer.messagesDelivered(qos: .atLeastOnce, latencies: [0.003, 0.2, 7])
        observer.commitFinished(messages: 12, deletions: 3, seconds: 0.0007)
        observer.upstreamConnection(0, connected: true)
        let text = Self.text(observer)
        #expect(text.hasSuffix("\n"))
        let parsed = try ExpositionParser.parse(text)

        #expect(parsed.types == [
            "iotgw_broker_refusals_total": "counter",
            "iotgw_build_info": "gauge",
            "iotgw_messages_accepted_by_mapping_total": "counter",
            "iotgw_upstream_connect_failures_total": "counter",
            "iotgw_upstream_inflight": "gauge",
            "process_cpu_seconds_total": "counter",
            "process_max_fds": "gauge",
            "process_open_fds": "gauge",
            "process_resident_memory_bytes": "gauge",
            "process_start_time_seconds": "gauge",
            "iotgw_commit_batch_size": "histogram",
            "iotgw_commit_duration_seconds": "histogram",
            "iotgw_delivery_latency_seconds": "histogram",
            "iotgw_devices": "gauge",
            "iotgw_messages_accepted_total": "counter",
            "iotgw_messages_delivered_total": "counter",
            "iotgw_messages_dropped_total": "counter",
            "iotgw_messages_expired_total": "counter",
            "iotgw_messages_refused_total": "counter",
            "iotgw_messages_resent_total": "counter",
            "iotgw_messages_shed_total": "counter",
            "iotgw_outbox_bytes": "gauge",
            "iotgw_outbox_messages": "gauge",
            "iotgw_registry_reloads_total": "counter",
            "iotgw_outbox_oldest_age_seconds": "gauge",
            "iotgw_requests_total": "counter",
            "iotgw_upstream_connected": "gauge",
            "iotgw_upstream_reconnects_total": "counter",
        ])
        #expect(Set(parsed.help.keys) == Set(parsed.types.keys))
        // Labels only from small fixed sets; never a device, path or topic.
        #expect(parsed.labelNames.isSubset(of: [
            "protocol", "outcome", "qos", "reason", "reason_code", "state", "result", "le",
            "mapping", "connection", "version", "commit",
        ]))
        // 32 request series (2 protocols x 16 outcomes), 6 outbox gauges,
        // 2+2+2 qos counters, 4 dropped, 3 refused, 8 broker refusal codes,
        // 4 plain, 2 device gauges, 2 registry reload results, 3 histograms
        // with 13+15+16 lines; build info, 1 mapping series, 2 in-flight
        // gauges, 2 connections x 6 connect failure reasons, 5 process metrics.
        #expect(parsed.samples.count == 32 + 6 + 6 + 4 + 3 + 8 + 4 + 2 + 2 + (12 + 3) + (14 + 3) + (15 + 3) + 1 + 1 + 2 + 12 + 5)
        // Families in name order, so scrapes diff line by line.
        #expect(parsed.familyOrder == parsed.familyOrder.sorted())
        // Two scrapes read the same, but for the process figures, which are read anew.
        func stable(_ text: String) -> [Substring] { text.split(separator: "\n").filter { !$0.hasPrefix("process_") } }
        #expect(stable(Self.text(observer)) == stable(text))
    }

    @Test func eachObserverHasItsOwnRegistry() {
        let first = PrometheusObserver()
        let second = PrometheusObserver(registry: PrometheusCollectorRegistry())
        first.messagesShed(count: 9)
        #expect(Self.lines(first).contains("iotgw_messages_shed_total 9"))
        #expect(Self.lines(second).contains("iotgw_messages_shed_total 0"))
    }

    @Test func observerCallsFromManyThreadsAddUp() async {
        let observer = PrometheusObserver()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<1000 {
                        observer.requestAnswered(protocol: .http, outcome: .accepted)
                        observer.messagesDelivered(qos: .atLeastOnce, latencies: [0.01])
                    }
                }
            }
        }
        let lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_requests_total{protocol="http",outcome="accepted"} 8000"#))
        #expect(lines.contains("iotgw_delivery_latency_seconds_count 8000"))
    }

    static func value(of series: String, in lines: Set<String>) -> Double? {
        lines.first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
    }
}

/// A strict reader of the Prometheus text format (0.0.4), enough to check
/// what the gateway emits.
struct ExpositionParser {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    var types: [String: String] = [:]
    var help: [String: String] = [:]
    var familyOrder: [String] = []
    var samples: [(name: String, labels: [(String, String)], value: Double)] = []
    var labelNames: Set<String> = []

    static func parse(_ text: String) throws -> ExpositionParser {
        var result = ExpositionParser()
        var histogramState: (series: String, last: Double)?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
                guard parts.count == 4 else { throw Failure(description: "bad comment: \(line)") }
                if parts[1] == "HELP" {
                    guard result.help[parts[2]] == nil else { throw Failure(description: "HELP twice: \(line)") }
                    result.help[parts[2]] = parts[3]
                    result.familyOrder.append(parts[2])
                } else {
                    guard ["counter", "gauge", "histogram"].contains(parts[3]), result.types[parts[2]] == nil else {
                        throw Failure(description: "bad TYPE: \(line)")
                    }
                    result.types[parts[2]] = parts[3]
                }
                continue
            }
            let (name, labels, value) = try sample(line)
            let family = result.types.keys.first { family in
                name == family || (result.types[family] == "histogram"
                    && ["_bucket", "_sum", "_count"].contains { name == family + $0 })
            }
            guard let family else { throw Failure(description: "sample of an undeclared family: \(line)") }
            // Counters of events are whole numbers; a counter of seconds
            // (`process_cpu_seconds_total`) is not.
            let seconds = result.types[family] == "counter" && name.hasSuffix("_seconds_total")
            if seconds {
                guard value >= 0 else { throw Failure(description: "bad counter: \(line)") }
            } else if result.types[family] == "counter" || name.hasSuffix("_count") || name.hasSuffix("_bucket") {
                guard value >= 0, value == value.rounded() else { throw Failure(description: "bad count: \(line)") }
            }
            if name.hasSuffix("_bucket") {
                guard labels.last?.0 == "le", let le = labels.last?.1 else { throw Failure(description: "bucket without le: \(line)") }
                guard le == "+Inf" || Double(le) != nil else { throw Failure(description: "bad le: \(line)") }
                if let state = histogramState, state.series == family {
                    guard value >= state.last else { throw Failure(description: "buckets not cumulative: \(line)") }
                }
                histogramState = (family, value)
            } else if name.hasSuffix("_count"), let state = histogramState, state.series == family {
                guard value == state.last else { throw Failure(description: "count differs from +Inf: \(line)") }
            }
            result.labelNames.formUnion(labels.map(\.0))
            result.samples.append((name, labels, value))
        }
        return result
    }

    /// `name{a="x",b="y"} value` or `name value`.
    private static func sample(_ line: Substring) throws -> (String, [(String, String)], Double) {
        let isNameCharacter: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
        let name = String(line.prefix(while: isNameCharacter))
        guard !name.isEmpty, !name.first!.isNumber else { throw Failure(description: "bad name: \(line)") }
        var rest = line.dropFirst(name.count)
        var labels: [(String, String)] = []
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = String(rest.prefix(while: isNameCharacter))
                rest = rest.dropFirst(label.count)
                guard !label.isEmpty, rest.hasPrefix("=\"") else { throw Failure(description: "bad label: \(line)") }
                rest = rest.dropFirst(2)
                var value = ""
                while let character = rest.first, character != "\"" {
                    if character == "\\" {
                        rest = rest.dropFirst()
                        guard let escaped = rest.first, "\\\"n".contains(escaped) else { throw Failure(description: "bad escape: \(line)") }
                        value.append(escaped == "n" ? "\n" : escaped)
                    } else {
                        value.append(character)
                    }
                    rest = rest.dropFirst()
                }
                guard rest.first == "\"" else { throw Failure(description: "unterminated label: \(line)") }
                rest = rest.dropFirst()
                labels.append((label, value))
                if rest.first == "," { rest = rest.dropFirst() }
                guard !rest.isEmpty else { throw Failure(description: "unterminated labels: \(line)") }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " ", let value = Double(rest.dropFirst()) else { throw Failure(description: "bad value: \(line)") }
        return (name, labels, value)
    }
}
