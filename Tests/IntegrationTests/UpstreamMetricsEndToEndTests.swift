import Foundation
import Testing

/// Issue 12's upstream metrics from a real gateway and a real mosquitto:
/// messages in flight while the broker holds its PUBACKs, and connect
/// attempts the broker refuses, counted once each as `refused`.
@Suite("Upstream metrics end to end")
struct UpstreamMetricsEndToEndTests {
    @Test("iotgw_upstream_inflight: messages handed over and not acknowledged while the broker is frozen (SIGSTOP); 0 once it answers")
    func inFlightWhileTheBrokerHoldsPubacks() async throws {
        try await EndToEnd.run("metrics-inflight") { env in
            let gateway = env.gateway
            _ = try await gateway.waitForMetrics("nothing in flight at start") {
                $0.value("iotgw_upstream_inflight", ["connection": "0"]) == 0
            }
            // A frozen broker keeps the TCP connection (the kernel takes the
            // bytes) but acknowledges nothing.
            env.broker.freeze()
            var payloads: [String] = []
            do {
                for index in 0..<4 {
                    let payload = "inflight-\(index)"
                    let answer = try await HTTP.request("POST", gateway.httpURL("/sensors/f\(index)/temperature"), body: Array(payload.utf8))
                    #expect(answer.status == 202, "\(answer)")
                    payloads.append(payload)
                }
                let held = try await gateway.waitForMetrics("4 messages in flight") {
                    $0.value("iotgw_upstream_inflight", ["connection": "0"]) == 4
                }
                #expect(held.value("iotgw_messages_delivered_total", ["qos": "1"]) == 0)
                #expect(held.value("iotgw_outbox_messages", ["qos": "1"]) == 4, "in flight and still in the outbox")
            } catch {
                env.broker.thaw()
                throw error
            }
            env.broker.thaw()
            let after = try await gateway.waitForMetrics("all acknowledged") {
                $0.value("iotgw_upstream_inflight", ["connection": "0"]) == 0
                    && $0.value("iotgw_messages_delivered_total", ["qos": "1"]) == 4
            }
            #expect(after.value("iotgw_upstream_reconnects_total") == 0, "the connection outlived the freeze")
            try await env.subscriber.waitForAll(Set(payloads), timeout: .seconds(30))
        }
    }

    @Test(
        "iotgw_upstream_connect_failures_total{reason=\"refused\"}: each CONNACK refusal counts once, as refused, never also as another reason",
        arguments: ["mqtt311", "mqtt5"]
    )
    func refusedConnectsAreCountedAsRefused(_ version: String) async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try TemporaryDirectory("metrics-refused-\(version)")
        let broker = try MosquittoBroker(certificates: certificates, directory: directory)
        var gateway: GatewayProcess?
        do {
            // Only client IDs with this prefix may connect: the gateway's
            // (`gw-test`) is refused with CONNACK "identifier rejected".
            guard let handle = FileHandle(forWritingAtPath: broker.configPath) else {
                throw HarnessError("cannot append to \(broker.configPath)")
            }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("clientid_prefixes only-these-\n".utf8))
            try handle.close()
            try await broker.start()
            var settings = GatewaySettings()
            settings.upstreamExtra = ["protocol: \(version)"]
            let started = try await GatewayProcess.started(settings: settings, broker: broker)
            gateway = started

            let metrics = try await started.waitForMetrics("two refused attempts") {
                ($0.value("iotgw_upstream_connect_failures_total", ["connection": "0", "reason": "refused"]) ?? 0) >= 2
            }
            // The log is read after the scrape: it has at least every attempt counted.
            let log = started.currentLog
            let refused = try #require(metrics.value("iotgw_upstream_connect_failures_total", ["connection": "0", "reason": "refused"]))
            let refusalLines = log.split(separator: "\n").filter { $0.contains("upstream refused the connection") }
            let failureLines = log.split(separator: "\n").filter { $0.contains("upstream connect attempt failed") }
            #expect(Double(refusalLines.count) >= refused, "\(refused) counted, \(refusalLines.count) refusals logged")
            #expect(failureLines.allSatisfy { $0.contains("mqtt.failure=refused") }, "\(failureLines)")
            for reason in ["timeout", "tls", "dns", "network", "other"] {
                #expect(metrics.value("iotgw_upstream_connect_failures_total", ["connection": "0", "reason": reason]) == 0, "\(reason)")
            }
            #expect(metrics.value("iotgw_upstream_connected") == 0)
            print("refused connects (\(version)): \(Int(refused)) counted; e.g. \(failureLines.first ?? "")")
            await started.kill()
            await broker.shutdown()
            directory.remove()
        } catch {
            let context = "\(error)\n--- gateway log ---\n\(tail(gateway?.log ?? "", lines: 40))\n--- broker log ---\n\(tail(broker.log, lines: 20))"
            await gateway?.kill()
            await broker.shutdown()
            directory.remove()
            throw HarnessError(context)
        }
    }
}
