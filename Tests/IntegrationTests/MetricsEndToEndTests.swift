import Foundation
import GatewayCore
import Testing

/// Proof 4 of the store-and-forward issue, second part: the admin listener
/// and the value of every metric after a known sequence of requests, broker
/// outage and reconnect. (Shed, refused{full}, expired and the `timeout` /
/// `delivered` outcomes are asserted in CapacityTests and ExpiryAndAckTests.)
@Suite("Metrics and health end to end")
struct MetricsEndToEndTests {
    typealias Counts = [String: Double]

    /// Every `iotgw_requests_total` series as "protocol/outcome" → value.
    static func requests(_ metrics: PrometheusSamples) -> Counts {
        metrics.all("iotgw_requests_total").reduce(into: [:]) {
            $0["\($1.labels["protocol"] ?? "?")/\($1.labels["outcome"] ?? "?")"] = $1.value
        }
    }

    static let outcomes = [
        "accepted", "delivered", "not_found", "method_not_allowed", "bad_request",
        "payload_too_large", "unavailable", "timeout", "internal_error",
        "unauthorized", "forbidden", "too_many_requests", "served", "conflict", "bad_gateway",
        "unsupported_media_type",
    ]

    /// All 18 series, zero unless given.
    static func expectedRequests(coap: Counts, http: Counts) -> Counts {
        var all: Counts = [:]
        for outcome in outcomes {
            all["coap/\(outcome)"] = coap[outcome] ?? 0
            all["http/\(outcome)"] = http[outcome] ?? 0
        }
        return all
    }

    static let connectFailureReasons = ["refused", "timeout", "tls", "dns", "network", "other"]

    /// The standard mappings' names and QoS, as in `StandardMappings`.
    static let mappings: [(name: String, qos: String)] = [
        ("temperature", "1"), ("humidity-qos0", "0"), ("patchable", "1"), ("envelope", "1"), ("coap-only", "1"),
    ]

    /// Every `iotgw_messages_accepted_by_mapping_total` series as "mapping/qos" → value.
    static func acceptedByMapping(_ metrics: PrometheusSamples) -> Counts {
        metrics.all("iotgw_messages_accepted_by_mapping_total").reduce(into: [:]) {
            $0["\($1.labels["mapping"] ?? "?")/\($1.labels["qos"] ?? "?")"] = $1.value
        }
    }

    /// One series per configured mapping at its QoS, zero unless given.
    static func expectedByMapping(_ counts: Counts) -> Counts {
        Dictionary(uniqueKeysWithValues: mappings.map { ("\($0.name)/\($0.qos)", counts["\($0.name)/\($0.qos)"] ?? 0) })
    }

    /// The process metrics agree with what /proc says of the gateway's process.
    static func expectProcessMetrics(_ metrics: PrometheusSamples, pid: pid_t) throws {
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"] {
            #expect(metrics.types[name] == (name.hasSuffix("_total") ? "counter" : "gauge"), "\(name)")
        }
        let cpu = try #require(metrics.value("process_cpu_seconds_total"))
        let resident = try #require(metrics.value("process_resident_memory_bytes"))
        let open = try #require(metrics.value("process_open_fds"))
        let max = try #require(metrics.value("process_max_fds"))
        let started = try #require(metrics.value("process_start_time_seconds"))
        #expect(cpu > 0)
        #expect(resident > 1_000_000, "\(resident)")
        // Its listeners, the database, the broker connection: more than stdio.
        #expect(open > 5 && open < max, "open \(open), max \(max)")
        // The limit the kernel shows for that process.
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let soft = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.flatMap { Double($0) }
        #expect(soft == max, "\(line)")
        // Started within the test's lifetime, before now.
        let now = Date().timeIntervalSince1970
        #expect(started <= now + 1 && started > now - 3600, "start \(started), now \(now)")
    }

    @Test("/healthz, /readyz and /metrics: request outcomes, accepted/delivered by QoS, outbox gauges, upstream state, reconnects, dropped{offline}, commit histograms")
    func knownSequence() async throws {
        try await EndToEnd.run("metrics", settings: GatewaySettings(coapMaxBody: 64, httpMaxBody: 64)) { env in
            let gateway = env.gateway
            let health = try await HTTP.request("GET", gateway.adminURL("/healthz"))
            #expect(health.status == 200, "\(health)")

            var metrics = try await gateway.waitForMetrics("the upstream connection") { $0.value("iotgw_upstream_connected") == 1 }
            #expect(metrics.types["iotgw_requests_total"] == "counter")
            #expect(metrics.types["iotgw_upstream_connected"] == "gauge")
            #expect(metrics.types["iotgw_commit_duration_seconds"] == "histogram")
            #expect(Self.requests(metrics) == Self.expectedRequests(coap: [:], http: [:]), "\(Self.requests(metrics))")
            #expect(metrics.value("iotgw_upstream_reconnects_total") == 0)
            // Issue 12: build info, per-mapping series from the start, the
            // in-flight gauge and connect failures of connection 0, process metrics.
            #expect(metrics.value("iotgw_build_info", ["version": GatewayVersion.string, "commit": GatewayVersion.commit]) == 1,
                    "\(metrics.all("iotgw_build_info"))")
            #expect(metrics.types["iotgw_build_info"] == "gauge")
            #expect(Self.acceptedByMapping(metrics) == Self.expectedByMapping([:]), "\(Self.acceptedByMapping(metrics))")
            #expect(metrics.value("iotgw_upstream_inflight", ["connection": "0"]) == 0)
            for reason in Self.connectFailureReasons {
                #expect(metrics.value("iotgw_upstream_connect_failures_total", ["connection": "0", "reason": reason]) == 0, "\(reason)")
            }
            try Self.expectProcessMetrics(metrics, pid: try #require(gateway.pid))
            // The client certificate's end, as openssl reads it: it has not
            // expired a minute before the metric's time and has a minute after.
            let expiry = try #require(metrics.value("iotgw_upstream_certificate_expiry_timestamp_seconds"), "no certificate expiry metric")
            let left = Int(expiry - Date().timeIntervalSince1970)
            let certificate = env.broker.certificates.gateway.certificate
            let before = try await ProcessRunner.run(Tools.openssl, ["x509", "-noout", "-in", certificate, "-checkend", String(left - 60)], timeout: .seconds(10))
            let after = try await ProcessRunner.run(Tools.openssl, ["x509", "-noout", "-in", certificate, "-checkend", String(left + 60)], timeout: .seconds(10))
            #expect(before.succeeded && !after.succeeded, "expiry metric \(expiry) against openssl: \(before.summary) / \(after.summary)")
            var ready = try await HTTP.request("GET", gateway.adminURL("/readyz"))
            #expect(ready.status == 200 && ready.text.contains("upstream: connected"), "\(ready)")

            // Phase 1, broker up: a known mix of outcomes on both protocols.
            let coapPort = gateway.coapPort
            func coap(_ path: String, _ payload: String, method: String = "post") async throws -> String {
                try await CoAP.request(method, port: coapPort, path: path, payload: Array(payload.utf8)).code
            }
            func http(_ path: String, _ payload: String?, method: String = "POST") async throws -> Int {
                try await HTTP.request(method, gateway.httpURL(path), body: payload.map { Array($0.utf8) }).status
            }
            var qos1: [(topic: String, payload: String)] = []
            var qos0: [String] = []
            for index in 0..<3 {
                #expect(try await coap("/sensors/m\(index)/temperature", "m-coap-t\(index)") == "2.04")
                qos1.append(("it/sensors/m\(index)/temperature", "m-coap-t\(index)"))
            }
            for index in 0..<2 {
                #expect(try await coap("/sensors/m\(index)/humidity", "m-coap-h\(index)") == "2.04")
                qos0.append("m-coap-h\(index)")
            }
            #expect(try await coap("/nope", "x") == "4.04")
            #expect(try await coap("/sensors/m0/temperature", "x", method: "patch") == "4.05")
            #expect(try await coap("/sensors/a+b/temperature", "x") == "4.00")
            #expect(try await coap("/sensors/big/temperature", String(repeating: "b", count: 65)) == "4.13")

            for index in 0..<2 {
                #expect(try await http("/sensors/mh\(index)/temperature", "m-http-t\(index)") == 202)
                qos1.append(("it/sensors/mh\(index)/temperature", "m-http-t\(index)"))
            }
            #expect(try await http("/sensors/mh0/humidity", "m-http-h0") == 202)
            qos0.append("m-http-h0")
            #expect(try await http("/nope", "x") == 404)
            #expect(try await http("/also/nope", "x") == 404)
            #expect(try await http("/sensors/m0/temperature", nil, method: "DELETE") == 405)
            #expect(try await http("/sensors/%23/temperature", "x") == 400)
            #expect(try await http("/sensors/big/temperature", String(repeating: "b", count: 65)) == 413)

            try await env.subscriber.waitForAll(Set(qos1.map(\.payload) + qos0), timeout: .seconds(30))
            metrics = try await gateway.waitForMetrics("phase 1 delivered and drained") {
                $0.value("iotgw_messages_delivered_total", ["qos": "1"]) == 5
                    && $0.value("iotgw_messages_delivered_total", ["qos": "0"]) == 3
                    && $0.value("iotgw_outbox_messages", ["qos": "1"]) == 0
            }
            #expect(Self.requests(metrics) == Self.expectedRequests(
                coap: ["accepted": 5, "not_found": 1, "method_not_allowed": 1, "bad_request": 1, "payload_too_large": 1],
                http: ["accepted": 3, "not_found": 2, "method_not_allowed": 1, "bad_request": 1, "payload_too_large": 1]
            ), "\(Self.requests(metrics))")
            #expect(metrics.value("iotgw_messages_accepted_total", ["qos": "1"]) == 5)
            #expect(metrics.value("iotgw_messages_accepted_total", ["qos": "0"]) == 3)
            #expect(Self.acceptedByMapping(metrics) == Self.expectedByMapping(["temperature/1": 5, "humidity-qos0/0": 3]),
                    "\(Self.acceptedByMapping(metrics))")
            #expect(metrics.value("iotgw_upstream_inflight", ["connection": "0"]) == 0, "everything was acknowledged")
            for qos in ["0", "1"] {
                #expect(metrics.value("iotgw_outbox_messages", ["qos": qos]) == 0)
                #expect(metrics.value("iotgw_outbox_bytes", ["qos": qos]) == 0)
                #expect(metrics.value("iotgw_outbox_oldest_age_seconds", ["qos": qos]) == 0)
                #expect(metrics.value("iotgw_messages_expired_total", ["qos": qos]) == 0)
                #expect(metrics.value("iotgw_messages_dropped_total", ["reason": "offline", "qos": qos]) == 0)
                #expect(metrics.value("iotgw_messages_dropped_total", ["reason": "rejected", "qos": qos]) == 0)
            }
            #expect(metrics.value("iotgw_messages_shed_total") == 0)
            #expect(metrics.value("iotgw_messages_refused_total", ["reason": "full"]) == 0)
            #expect(metrics.value("iotgw_messages_refused_total", ["reason": "stopping"]) == 0)
            #expect(metrics.value("iotgw_messages_resent_total") == 0)
            // Histograms: every stored QoS 1 message is in exactly one commit
            // batch; the latency histogram takes QoS 1 deliveries only.
            let batches = metrics.value("iotgw_commit_batch_size_count") ?? 0
            #expect(batches >= 1 && batches <= 5, "commit batches: \(batches)")
            #expect(metrics.value("iotgw_commit_batch_size_sum") == 5)
            #expect(metrics.bucket("iotgw_commit_batch_size", le: .infinity) == batches)
            #expect((metrics.value("iotgw_commit_duration_seconds_count") ?? 0) >= batches)
            #expect((metrics.value("iotgw_commit_duration_seconds_sum") ?? -1) > 0)
            #expect(metrics.value("iotgw_delivery_latency_seconds_count") == 5)
            #expect(metrics.bucket("iotgw_delivery_latency_seconds", le: .infinity) == 5)
            // No per-device (or per-topic, per-path) label anywhere: only
            // these labels, each from its small fixed set.
            let allowed: [String: Set<String>] = [
                "protocol": ["coap", "http"], "outcome": Set(Self.outcomes), "qos": ["0", "1"],
                "reason": ["full", "disk_full", "stopping", "offline", "rejected"],
                "reason_code": ["0x80", "0x83", "0x87", "0x89", "0x90", "0x91", "0x97", "0x99"],
                "state": ["enabled", "disabled"], "result": ["ok", "failed"],
                "mapping": Set(Self.mappings.map(\.name)), "connection": ["0"],
                "version": [GatewayVersion.string], "commit": [GatewayVersion.commit],
            ]
            for sample in metrics.samples {
                for (label, value) in sample.labels where label != "le" {
                    let reasons = sample.name == "iotgw_upstream_connect_failures_total" && label == "reason"
                        ? Set(Self.connectFailureReasons) : nil
                    #expect((reasons ?? allowed[label])?.contains(value) == true, "\(sample.name): label \(label)=\(value)")
                }
            }
            #expect(!metrics.text.contains("it/sensors") && !metrics.text.contains("/sensors/"), "a topic or path appears in /metrics")

            // Phase 2, broker down.
            try await env.broker.stop()
            metrics = try await gateway.waitForMetrics("the gateway to notice the broker is gone") { $0.value("iotgw_upstream_connected") == 0 }
            ready = try await HTTP.request("GET", gateway.adminURL("/readyz"))
            #expect(ready.status == 200, "readiness does not require the upstream: \(ready)")
            #expect(ready.text.contains("upstream: disconnected"), "\(ready)")
            #expect(ready.text.contains("listening: yes") && ready.text.contains("outbox: writable"), "\(ready)")
            #expect(try await HTTP.request("GET", gateway.adminURL("/healthz")).status == 200)

            // QoS 0 under the default `drop` policy: answered, not kept.
            #expect(try await coap("/sensors/d0/humidity", "m-down-h0") == "2.04")
            #expect(try await coap("/sensors/d1/humidity", "m-down-h1") == "2.04")
            #expect(try await http("/sensors/d2/humidity", "m-down-h2") == 202)
            // QoS 1: stored.
            var stored: [(topic: String, payload: String)] = []
            for index in 0..<2 {
                #expect(try await coap("/sensors/d\(index)/temperature", "m-down-c\(index)") == "2.04")
                stored.append(("it/sensors/d\(index)/temperature", "m-down-c\(index)"))
                #expect(try await http("/sensors/dh\(index)/temperature", "m-down-h\(index)-http") == 202)
                stored.append(("it/sensors/dh\(index)/temperature", "m-down-h\(index)-http"))
            }
            let storedBytes = stored.reduce(0) { $0 + $1.topic.utf8.count + $1.payload.utf8.count }
            // The gateway keeps trying while the broker is down: the port is
            // closed, so each attempt fails as `network`.
            metrics = try await gateway.waitForMetrics("a failed connect attempt") {
                ($0.value("iotgw_upstream_connect_failures_total", ["connection": "0", "reason": "network"]) ?? 0) >= 1
            }
            for reason in Self.connectFailureReasons where reason != "network" {
                #expect(metrics.value("iotgw_upstream_connect_failures_total", ["connection": "0", "reason": reason]) == 0, "\(reason)")
            }
            let failedAttempts = metrics.value("iotgw_upstream_connect_failures_total", ["connection": "0", "reason": "network"]) ?? 0
            try await Task.sleep(for: .milliseconds(1100))
            metrics = try await PrometheusSamples.scrape(gateway)
            #expect(metrics.value("iotgw_upstream_connected") == 0)
            #expect(metrics.value("iotgw_outbox_messages", ["qos": "1"]) == 4, "depth while down = what was accepted")
            #expect(metrics.value("iotgw_outbox_bytes", ["qos": "1"]) == Double(storedBytes))
            #expect((metrics.value("iotgw_outbox_oldest_age_seconds", ["qos": "1"]) ?? 0) >= 1.0)
            #expect(metrics.value("iotgw_outbox_messages", ["qos": "0"]) == 0)
            #expect(metrics.value("iotgw_messages_dropped_total", ["reason": "offline", "qos": "0"]) == 3)
            #expect(metrics.value("iotgw_messages_dropped_total", ["reason": "offline", "qos": "1"]) == 0)
            #expect(metrics.value("iotgw_messages_accepted_total", ["qos": "0"]) == 3, "dropped QoS 0 counted as accepted into the outbox")
            #expect(metrics.value("iotgw_messages_accepted_total", ["qos": "1"]) == 9)
            #expect(metrics.value("iotgw_messages_delivered_total", ["qos": "1"]) == 5)
            // QoS 0 dropped while offline never entered the outbox: not accepted for its mapping either.
            #expect(Self.acceptedByMapping(metrics) == Self.expectedByMapping(["temperature/1": 9, "humidity-qos0/0": 3]),
                    "\(Self.acceptedByMapping(metrics))")
            #expect(metrics.value("iotgw_upstream_connect_failures_total", ["connection": "0", "reason": "network"]) ?? 0 >= failedAttempts)
            #expect(Self.requests(metrics)["coap/accepted"] == 9 && Self.requests(metrics)["http/accepted"] == 6,
                    "\(Self.requests(metrics))")

            // Phase 3, broker back: one reconnect, the backlog drains.
            try await env.broker.start()
            metrics = try await gateway.waitForMetrics(timeout: MosquittoBroker.afterOutage, "reconnect and drain") {
                $0.value("iotgw_upstream_connected") == 1
                    && $0.value("iotgw_messages_delivered_total", ["qos": "1"]) == 9
                    && $0.value("iotgw_outbox_messages", ["qos": "1"]) == 0
            }
            #expect(metrics.value("iotgw_upstream_reconnects_total") == 1)
            #expect(metrics.value("iotgw_outbox_bytes", ["qos": "1"]) == 0)
            #expect(metrics.value("iotgw_outbox_oldest_age_seconds", ["qos": "1"]) == 0)
            #expect(metrics.value("iotgw_messages_resent_total") == 0, "nothing was in flight when the broker stopped")
            #expect(metrics.value("iotgw_upstream_inflight", ["connection": "0"]) == 0)
            // Failed attempts ended with the reconnect: counted, never reset.
            let failures = metrics.all("iotgw_upstream_connect_failures_total").reduce(0) { $0 + $1.value }
            #expect(failures >= failedAttempts && failures == metrics.value(
                "iotgw_upstream_connect_failures_total", ["connection": "0", "reason": "network"]), "\(metrics.all("iotgw_upstream_connect_failures_total"))")
            try Self.expectProcessMetrics(metrics, pid: try #require(gateway.pid))
            #expect(metrics.value("iotgw_delivery_latency_seconds_count") == 9)
            // The four stored while down waited over a second: above the 1 s bucket.
            #expect((metrics.bucket("iotgw_delivery_latency_seconds", le: 1) ?? 99) <= 5)
            ready = try await HTTP.request("GET", gateway.adminURL("/readyz"))
            #expect(ready.status == 200 && ready.text.contains("upstream: connected"), "\(ready)")

            try await env.subscriber.waitForAll(Set(stored.map(\.payload)), timeout: .seconds(30))
            let received = try await env.subscriber.settle(for: .milliseconds(500))
            let texts = Set(received.map(\.text))
            #expect(texts.isDisjoint(with: ["m-down-h0", "m-down-h1", "m-down-h2"]), "a dropped QoS 0 was published")
            print("metrics: 18 request series, accepted 9/3, delivered 9/3, dropped{offline,0} 3, reconnects 1, commit batches \(Int(batches)), failed connect attempts \(Int(failures))")
        }
    }

    @Test("the tests' Prometheus parser matches names and label sets exactly, in any label order")
    func parserSelfTest() throws {
        let text = #"""
            # HELP x_total Help text.
            # TYPE x_total counter
            x_total{a="1",b="2"} 3
            x_total{b="1",a="2"} 4
            x_total{a="1"} 5
            y 6.5
            h_bucket{le="1.0"} 2
            h_bucket{le="+Inf"} 3
            h_count 3
            z{s="q\"uote,with}"} 7
            """#
        let metrics = try PrometheusSamples(text)
        #expect(metrics.value("x_total", ["b": "2", "a": "1"]) == 3)
        #expect(metrics.value("x_total", ["a": "2", "b": "1"]) == 4)
        #expect(metrics.value("x_total", ["a": "1"]) == 5)
        #expect(metrics.value("x_total") == nil)
        #expect(metrics.value("x_total", ["a": "1", "b": "2", "c": "3"]) == nil)
        #expect(metrics.value("x") == nil)
        #expect(metrics.value("y") == 6.5)
        #expect(metrics.bucket("h", le: 1) == 2)
        #expect(metrics.bucket("h", le: .infinity) == 3)
        #expect(metrics.value("h_count") == 3)
        #expect(metrics.value("z", ["s": #"q"uote,with}"#]) == 7)
        #expect(metrics.types["x_total"] == "counter")
        #expect(throws: HarnessError.self) { try PrometheusSamples("bad{a=1} 2") }
        #expect(throws: HarnessError.self) { try PrometheusSamples("bad 2x") }
    }
}
