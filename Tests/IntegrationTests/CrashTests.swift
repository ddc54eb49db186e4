import Foundation
import Testing

/// Proof 1 of the store-and-forward issue: kill -9 at random moments under
/// load, again and again, and nothing the gateway acknowledged is lost.
@Suite("kill -9 at random moments")
struct CrashTests {
    /// `upstream.max_inflight` in the harness's configuration (GatewaySettings.yaml).
    static let maxInflight = 20
    /// Acknowledged rows whose deletion is not committed yet, at most, per
    /// connection (`ForwarderMachine.defaultMaxUnsettled`): a crash can send
    /// those again too.
    static let maxUnsettled = 1000

    @Test("QoS 1 over CoAP and HTTP while the gateway is SIGKILLed 6 times: every 2.04/202 delivered, duplicates ≤ (max_inflight + unsettled deletions + requests outstanding) × kills")
    func killNineRepeatedly() async throws {
        try await EndToEnd.run("crash-kill9") { env in
            let gateway = env.gateway
            let kills = 6
            let coapPort = gateway.coapPort, httpPort = gateway.httpPort

            // HTTP: two curl loops, one request at a time each.
            let httpA = HTTPStream(), httpB = HTTPStream()
            async let httpRecordsA = httpA.run(
                url: { _ in "http://127.0.0.1:\(httpPort)/sensors/crash-ha/temperature" }, payload: { "crash-ha-\($0)" }
            )
            async let httpRecordsB = httpB.run(
                url: { _ in "http://127.0.0.1:\(httpPort)/sensors/crash-hb/temperature" }, payload: { "crash-hb-\($0)" }
            )

            // CoAP: 8 source ports, 4 outstanding each, about 2000 requests/s.
            // A request whose gateway dies before answering is given up after
            // its retransmissions (from 1 s, doubling) or 1.5 s after an empty
            // ACK: it is then simply not acknowledged (a device would send a
            // new reading).
            let coapSettings = CoAPLoad.Settings(
                sockets: 8, window: 4, ratePerSecond: 2000, retransmitAfter: .seconds(1),
                separateResponseTimeout: .milliseconds(1500), timeout: .seconds(240)
            )
            let ((kill, killPoints), outcome) = try await CoAPLoad.during(
                port: coapPort, settings: coapSettings, drain: .seconds(5),
                make: { socket, sequence in
                    CoAPLoad.Request(path: ["sensors", "crash-c\(socket)", "temperature"], payload: Array("crash-c\(socket)-\(sequence)".utf8))
                }
            ) { coap in
                defer {
                    httpA.stop()
                    httpB.stop()
                }
                // Each kill comes at a random moment 0.3–1.5 s after the load is
                // flowing again (some new 2.04s since the last restart), so every
                // kill hits the gateway mid-load, not while it idles.
                var kill = 0
                var killPoints: [String] = []
                while kill < kills {
                    try await coap.waitFor(50, acknowledged: true, "before kill \(kill + 1)")
                    let delay = Double.random(in: 0.3...1.5)
                    try await Task.sleep(for: .seconds(delay))
                    let sentAtKill = coap.sent.load(ordering: .relaxed)
                    await gateway.kill()
                    kill += 1
                    // What the dead gateway leaves queued although the
                    // subscriber already has it will be sent again: this
                    // kill's share of the duplicates (in flight without a
                    // recorded PUBACK, or PUBACKed but not yet deleted).
                    try await Task.sleep(for: .milliseconds(300))
                    let resendable = try await Self.queuedButDelivered(gateway, env.subscriber)
                    killPoints.append(String(format: "%.2fs/%d/%d", delay, sentAtKill, resendable))
                    try await gateway.start()
                }
                // The load reaches the last incarnation too, then stops.
                try await coap.waitFor(200, acknowledged: true, "after the last restart")
                return (kill, killPoints)
            }
            let http = await httpRecordsA + httpRecordsB

            // Only 2.04 or no answer: the gateway never answered anything else.
            let coapCodes = outcome.histogram
            #expect(Set(coapCodes.keys).isSubset(of: ["2.04", "none"]), "CoAP answers: \(coapCodes)")
            let httpStatuses = http.reduce(into: [String: Int]()) { $0[$1.status.map(String.init) ?? "none", default: 0] += 1 }
            #expect(Set(httpStatuses.keys).isSubset(of: ["202", "none"]), "HTTP answers: \(httpStatuses)")

            let coapAcknowledged = outcome.acknowledged
            let httpAcknowledged = Set(http.filter { $0.status == 202 }.map(\.payload))
            // (CoAP load at every kill is guaranteed by the waits above; HTTP's is checked here.)
            #expect(httpAcknowledged.count >= 10, "HTTP load too light to prove anything: \(httpStatuses)")
            let acknowledged = coapAcknowledged.union(httpAcknowledged)

            try await env.subscriber.waitForAll(acknowledged, timeout: .seconds(120))
            // A moment more, so late duplicates are counted too.
            let received = try await env.subscriber.settle(for: .seconds(1))
            let accounting = Accounting(acknowledged: acknowledged, received: received)
            print("""
                kill -9 x\(kill) under load (kill after/requests sent/queued but already delivered: \(killPoints.joined(separator: ", "))): \
                delivered \(accounting.delivered) / acknowledged \(accounting.acknowledged) \
                (CoAP \(coapAcknowledged.count), HTTP \(httpAcknowledged.count)), \
                duplicated \(accounting.duplicates), lost \(accounting.lost.count), \
                delivered without acknowledgement \(accounting.unacknowledgedDelivered); \
                CoAP answers \(coapCodes), HTTP answers \(httpStatuses)
                """)
            #expect(kill >= 5)
            #expect(accounting.lost.isEmpty, "\(accounting)")
            #expect(accounting.delivered == acknowledged.count, "\(accounting)")
            // Each kill may duplicate what was in flight upstream or
            // acknowledged but not yet deleted, and each
            // request stored but not yet answered: its client sends it again
            // to the next incarnation (CoAP retransmits the same CON, as
            // RFC 7252 has it; a device would do the same after a lost 202).
            let outstanding = coapSettings.sockets * coapSettings.window + 2
            let bound = (Self.maxInflight + Self.maxUnsettled + outstanding) * kill
            #expect(accounting.duplicates <= bound,
                    "more duplicates than (max_inflight \(Self.maxInflight) + unsettled \(Self.maxUnsettled) + outstanding \(outstanding)) x kills (\(kill)): \(accounting)")
            // What the run saw, for the record (the bound is what is promised).
            print("crash-kill9: \(accounting.duplicates) duplicates over \(kill) kills")
            #expect(received.allSatisfy { $0.topic.hasPrefix("it/sensors/crash-") && $0.qos == 1 }, "unexpected messages")
        }
    }

    /// Messages in the (stopped) gateway's outbox whose payload the
    /// subscriber has already received, through `queue peek`.
    static func queuedButDelivered(_ gateway: GatewayProcess, _ subscriber: Subscriber) async throws -> Int {
        let received = Set(subscriber.messages().map(\.text))
        let peek = try await QueueCommandTests.json(["peek", "1000000", "--json"], config: gateway.configPath)
        let queued = (peek["messages"] as? [[String: Any]] ?? []).map { QueueCommandTests.decodeBase64($0["payload_base64"]) }
        return queued.filter { received.contains($0) }.count
    }
}
