import Foundation
import GatewayCore
@testable import GatewayRuntime
import Prometheus
import Testing

/// Issue 12's metrics: build info, per-mapping acceptance, in-flight and
/// connect failures per connection, and the process metrics read from /proc.
@Suite("Issue 12 metrics")
struct ObservabilityMetricsTests {
    static func lines(_ observer: PrometheusObserver) -> Set<String> {
        Set(MetricsTests.text(observer).split(separator: "\n").map(String.init))
    }

    /// The value of the sample line that is exactly `series`.
    static func value(_ series: String, in lines: Set<String>) -> Double? {
        lines.first { $0.hasPrefix(series + " ") }.flatMap { Double($0.dropFirst(series.count + 1)) }
    }

    @Test func buildInfoNamesVersionAndCommit() {
        let lines = Self.lines(PrometheusObserver())
        #expect(lines.contains(
            #"iotgw_build_info{version="\#(GatewayVersion.string)",commit="\#(GatewayVersion.commit)"} 1.0"#
        ), "\(lines.filter { $0.contains("build_info") })")
    }

    @Test func acceptedMessagesAreCountedPerMappingAndQoS() {
        let observer = PrometheusObserver(mappings: [("temps", .atLeastOnce), ("hum", .atMostOnce)])
        var lines = Self.lines(observer)
        // The configured mappings' series exist before any message.
        #expect(lines.contains(#"iotgw_messages_accepted_by_mapping_total{mapping="temps",qos="1"} 0"#))
        #expect(lines.contains(#"iotgw_messages_accepted_by_mapping_total{mapping="hum",qos="0"} 0"#))
        #expect(!lines.contains { $0.hasPrefix(#"iotgw_messages_accepted_by_mapping_total{mapping="temps",qos="0"}"#) })

        for _ in 0..<3 { observer.messageAccepted(qos: .atLeastOnce, mapping: "temps") }
        observer.messageAccepted(qos: .atMostOnce, mapping: "hum")
        // A mapping a reload added, and a name that needs escaping.
        observer.messageAccepted(qos: .atLeastOnce, mapping: "new one")
        observer.messageAccepted(qos: .atLeastOnce, mapping: #"q"uo\te"#)
        lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_messages_accepted_by_mapping_total{mapping="temps",qos="1"} 3"#))
        #expect(lines.contains(#"iotgw_messages_accepted_by_mapping_total{mapping="hum",qos="0"} 1"#))
        #expect(lines.contains(#"iotgw_messages_accepted_by_mapping_total{mapping="new one",qos="1"} 1"#))
        #expect(lines.contains(#"iotgw_messages_accepted_by_mapping_total{mapping="q\"uo\\te",qos="1"} 1"#))
        // The per-QoS total counts the same messages.
        #expect(lines.contains(#"iotgw_messages_accepted_total{qos="1"} 5"#))
        #expect(lines.contains(#"iotgw_messages_accepted_total{qos="0"} 1"#))
        // QoS 2 (generic profile only) has its series made on first use.
        #expect(!lines.contains { $0.hasPrefix(#"iotgw_messages_accepted_total{qos="2"}"#) })
        observer.messageAccepted(qos: .exactlyOnce, mapping: "temps")
        lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_messages_accepted_total{qos="2"} 1"#))
        #expect(lines.contains(#"iotgw_messages_accepted_by_mapping_total{mapping="temps",qos="2"} 1"#))
        #expect(lines.contains(#"iotgw_messages_accepted_total{qos="1"} 5"#))
    }

    @Test func perMappingCountsAddUpAcrossThreads() async {
        let observer = PrometheusObserver(mappings: [("a", .atLeastOnce)])
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<2000 {
                        // Half the tasks race to create the same new series.
                        observer.messageAccepted(qos: .atLeastOnce, mapping: task % 2 == 0 ? "a" : "m\(index % 4)")
                    }
                }
            }
        }
        let lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_messages_accepted_by_mapping_total{mapping="a",qos="1"} 8000"#))
        for name in 0..<4 {
            #expect(lines.contains(#"iotgw_messages_accepted_by_mapping_total{mapping="m\#(name)",qos="1"} 2000"#))
        }
    }

    @Test func pairsPastTheTableCountAsOther() {
        let registry = PrometheusCollectorRegistry()
        let table = MappingCounters(registry, name: "t_total", help: "t", seed: [])
        for index in 0..<MappingCounters.capacity { table.increment(mapping: "m\(index)", qos: .atLeastOnce) }
        table.increment(mapping: "one-too-many", qos: .atLeastOnce)
        table.increment(mapping: "m7", qos: .atLeastOnce)
        let text = registry.emitToString()
        #expect(text.contains(#"t_total{mapping="other",qos="1"} 1"#))
        #expect(text.contains(#"t_total{mapping="m7",qos="1"} 2"#))
        #expect(!text.contains("one-too-many"))
    }

    @Test func inFlightIsAGaugePerConnection() {
        let observer = PrometheusObserver(connections: 2)
        var lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_upstream_inflight{connection="0"} 0.0"#))
        #expect(lines.contains(#"iotgw_upstream_inflight{connection="1"} 0.0"#))
        observer.upstreamInFlight(0, count: 20)
        observer.upstreamInFlight(1, count: 3)
        observer.upstreamInFlight(0, count: 17)
        // A connection the configuration does not have is ignored, not trapped on.
        observer.upstreamInFlight(5, count: 9)
        lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_upstream_inflight{connection="0"} 17.0"#))
        #expect(lines.contains(#"iotgw_upstream_inflight{connection="1"} 3.0"#))
        #expect(!lines.contains { $0.contains(#"connection="5""#) })
    }

    @Test func connectFailuresAreCountedByConnectionAndReason() {
        let observer = PrometheusObserver(connections: 2)
        var lines = Self.lines(observer)
        for connection in ["0", "1"] {
            for reason in UpstreamConnectFailure.allCases {
                #expect(lines.contains(
                    #"iotgw_upstream_connect_failures_total{connection="\#(connection)",reason="\#(reason.rawValue)"} 0"#
                ))
            }
        }
        observer.upstreamConnectFailed(0, reason: .network)
        observer.upstreamConnectFailed(0, reason: .network)
        observer.upstreamConnectFailed(1, reason: .refused)
        observer.upstreamConnectFailed(0, reason: .timeout)
        lines = Self.lines(observer)
        #expect(lines.contains(#"iotgw_upstream_connect_failures_total{connection="0",reason="network"} 2"#))
        #expect(lines.contains(#"iotgw_upstream_connect_failures_total{connection="0",reason="timeout"} 1"#))
        #expect(lines.contains(#"iotgw_upstream_connect_failures_total{connection="1",reason="refused"} 1"#))
        #expect(lines.contains(#"iotgw_upstream_connect_failures_total{connection="1",reason="network"} 0"#))
    }

    @Test func processMetricsAreReadAtEachScrape() throws {
        let lines = Self.lines(PrometheusObserver())
        for (name, type) in [
            ("process_cpu_seconds_total", "counter"), ("process_resident_memory_bytes", "gauge"),
            ("process_open_fds", "gauge"), ("process_max_fds", "gauge"), ("process_start_time_seconds", "gauge"),
        ] {
            #expect(lines.contains("# TYPE \(name) \(type)"), "\(name)")
        }
        let cpu = try #require(Self.value("process_cpu_seconds_total", in: lines))
        let resident = try #require(Self.value("process_resident_memory_bytes", in: lines))
        let open = try #require(Self.value("process_open_fds", in: lines))
        let max = try #require(Self.value("process_max_fds", in: lines))
        let started = try #require(Self.value("process_start_time_seconds", in: lines))
        #expect(cpu > 0)
        // A Swift test process holds megabytes at least.
        #expect(resident > 1_000_000)
        // stdin, stdout, stderr at least, and within the limit.
        #expect(open >= 3 && open <= max, "open \(open), max \(max)")
        let now = Date().timeIntervalSince1970
        #expect(started <= now + 1 && started > now - 7 * 86_400, "start \(started), now \(now)")
        // The same figures the kernel gives for this process's limit.
        var limit = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        #expect(max == Double(limit.rlim_cur))
    }

    @Test func procStatIsParsedAfterTheCommandName() throws {
        // A command name with spaces and parentheses must not shift the fields.
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 130 0 0 20 0 9 0 123400 10000000 2000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0"
        let parsed = try #require(ProcessMetrics.parse(
            stat: stat, statm: "5000 2000 300 10 0 900 0\n",
            system: "cpu  1 2 3\nbtime 1800000000\nprocesses 9\n", ticksPerSecond: 100, pageSize: 4096
        ))
        #expect(parsed.cpuSeconds == 3.8)
        #expect(parsed.residentBytes == 2000 * 4096)
        #expect(parsed.startTimeSeconds == 1_800_000_000 + 1234)
        #expect(ProcessMetrics.parse(stat: "1 (x) S 1", statm: "1 1", system: "btime 1", ticksPerSecond: 100, pageSize: 4096) == nil)
        #expect(ProcessMetrics.parse(stat: stat, statm: "5000 2000", system: "no boot time", ticksPerSecond: 100, pageSize: 4096) == nil)
    }
}
