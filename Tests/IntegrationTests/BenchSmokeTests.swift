import Foundation
import Testing

/// Benchmarks are not tests, but they must not rot: this runs every scenario
/// of `bench/run` at a tiny size against the gateway binary under test and
/// checks that each one ran and measured something. It asserts no speed.
///
/// `bench/run` compiles its C tools (gcc), installs what is missing through
/// `.ci/setup` (`IOT_SETUP_BENCH=1`: wrk, python3, gcc; nothing when all is
/// there), starts its own mosquitto on free loopback ports, and writes its
/// JSON where we say, never to bench/results/latest.json.
@Suite("bench/run --smoke")
struct BenchSmokeTests {
    static let scenarios = [
        "coap-con", "http-post", "dtls-psk", "https-post", "dtls-handshakes",
        "ingress-only", "coap-paced", "egress", "drain", "restart", "memory",
    ]

    @Test("every scenario runs at a tiny size and reports non-zero counts")
    func smoke() async throws {
        let gateway = try GatewayBinary.path()
        let script = GatewayBinary.packageRoot.appendingPathComponent("bench/run").path
        let directory = try TemporaryDirectory("bench-smoke")
        defer { directory.remove() }
        let output = directory.path + "/smoke.json"

        let result = try await ProcessRunner.run(
            script, ["--smoke", "--debug", "--output", output],
            environment: ["IOT_GATEWAY_BIN": gateway],
            timeout: .seconds(360)
        )
        #expect(result.succeeded, "bench/run --smoke failed:\n\(result.summary)")
        print(tail(result.stdoutText, lines: 50))

        let data = try #require(FileManager.default.contents(atPath: output), "no JSON at \(output):\n\(result.summary)")
        let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(report["size"] as? String == "smoke")
        #expect((report["failed_scenarios"] as? [Any])?.isEmpty == true, "failed: \(report["failed_scenarios"] ?? "?")")
        let scenarios = try #require(report["scenarios"] as? [String: Any])
        for name in Self.scenarios {
            let scenario = scenarios[name] as? [String: Any]
            #expect(scenario != nil, "scenario \(name) missing from the JSON")
            #expect(scenario?["error"] == nil, "scenario \(name): \(scenario?["error"] ?? "")")
        }

        // Each figure the table is made of was measured on something.
        let counts: [(String, [String])] = [
            ("coap-con", ["baseline", "ok"]),
            ("coap-con", ["normal", "load", "ok"]),
            ("coap-con", ["normal", "subscriber", "unique"]),
            ("coap-con", ["full", "load", "ok"]),
            ("coap-con", ["full", "subscriber", "unique"]),
            ("http-post", ["baseline", "ok"]),
            ("http-post", ["normal", "load", "ok"]),
            ("http-post", ["normal", "subscriber", "unique"]),
            ("http-post", ["full", "load", "ok"]),
            ("http-post", ["full", "subscriber", "unique"]),
            ("dtls-psk", ["baseline", "ok"]),
            ("dtls-psk", ["normal", "load", "sessions_connected"]),
            ("dtls-psk", ["normal", "load", "ok"]),
            ("dtls-psk", ["normal", "subscriber", "unique"]),
            ("dtls-psk", ["full", "load", "ok"]),
            ("dtls-psk", ["full", "subscriber", "unique"]),
            ("dtls-psk", ["ceiling", "subscriber", "unique"]),
            ("dtls-psk", ["ceiling", "counts", "acked"]),
            ("dtls-psk", ["floor", "counts", "deleted"]),
            ("https-post", ["baseline", "ok"]),
            ("https-post", ["normal", "load", "ok"]),
            ("https-post", ["normal", "subscriber", "unique"]),
            ("https-post", ["full", "load", "ok"]),
            ("https-post", ["full", "subscriber", "unique"]),
            ("https-post", ["ceiling", "subscriber", "unique"]),
            ("https-post", ["ceiling", "counts", "acked"]),
            ("https-post", ["floor", "counts", "deleted"]),
            ("dtls-handshakes", ["baseline", "handshakes"]),
            ("dtls-handshakes", ["gateway", "handshakes"]),
            ("dtls-handshakes", ["metrics", "accepted_qos1"]),
            ("ingress-only", ["normal", "coap", "ok"]),
            ("ingress-only", ["normal", "http", "ok"]),
            ("ingress-only", ["full", "coap", "ok"]),
            ("ingress-only", ["full", "http", "ok"]),
            ("coap-paced", ["load", "ok"]),
            ("coap-paced", ["subscriber", "unique"]),
            ("coap-paced", ["subscriber", "latency_us", "n"]),
            ("egress", ["default", "bridge", "load", "ok"]),
            ("egress", ["default", "bridge", "subscriber", "unique"]),
            ("egress", ["default", "bridge", "counts", "acked"]),
            ("egress", ["default", "floor_normal", "counts", "deleted"]),
            ("egress", ["default", "floor_full", "subscriber", "unique"]),
            ("egress", ["default", "normal", "subscriber", "unique"]),
            ("egress", ["default", "full", "subscriber", "unique"]),
            ("egress", ["100", "bridge", "subscriber", "unique"]),
            ("egress", ["100", "normal", "subscriber", "unique"]),
            ("egress", ["100", "full", "subscriber", "unique"]),
            ("drain", ["default", "baseline", "subscriber", "unique"]),
            ("drain", ["default", "queued"]),
            ("drain", ["default", "subscriber", "unique"]),
            ("drain", ["100", "baseline", "subscriber", "unique"]),
            ("drain", ["100", "queued"]),
            ("drain", ["100", "subscriber", "unique"]),
            ("restart", ["queued"]),
            ("restart", ["ready_s"]),
            ("restart", ["first_puback_s"]),
            ("memory", ["idle_rss_kb"]),
            ("memory", ["load_peak_kb"]),
            ("memory", ["queued_running_kb"]),
        ]
        for (scenario, path) in counts {
            let value = Self.number(scenarios[scenario], path)
            #expect((value ?? 0) > 0, "\(scenario).\(path.joined(separator: ".")) = \(value.map { "\($0)" } ?? "missing")")
        }
        let table = report["table"] as? [Any] ?? []
        #expect(!table.isEmpty, "the report has no table")
    }

    /// The number at `path` inside nested JSON objects.
    static func number(_ root: Any?, _ path: [String]) -> Double? {
        var current = root
        for key in path { current = (current as? [String: Any])?[key] }
        return (current as? NSNumber)?.doubleValue
    }
}
