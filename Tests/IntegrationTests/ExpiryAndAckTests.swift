import Foundation
import Testing

/// Proof 4 of the store-and-forward issue, first part: per-mapping `expiry`
/// and `ack: delivered` (success and timeout), end to end.
@Suite("Expiry and ack: delivered")
struct ExpiryAndAckTests {
    /// 6 s. Sending the 18 readings one process at a time took up to 17 s
    /// under the whole suite on 2 cores, so some may expire before the
    /// queue is counted: the count checks that every reading is either
    /// queued or counted as expired, which holds however long sending took.
    static let expiryMappings = """
        - name: expiring
          resource: /exp/{device}
          auth: anonymous
          topic: it/exp/{device}
          qos: 1
          expiry: 6s
        - name: expiring-qos0
          resource: /exp0/{device}
          auth: anonymous
          topic: it/exp0/{device}
          qos: 0
          expiry: 6s
        - name: durable
          resource: /keep/{device}
          auth: anonymous
          topic: it/keep/{device}
          qos: 1

        """

    @Test("expiry: 6s, broker down for longer: expired readings (QoS 1 and kept QoS 0) never delivered and counted; others delivered")
    func expiredNeverDelivered() async throws {
        let settings = GatewaySettings(mappings: Self.expiryMappings, outboxExtra: ["qos0_when_offline: keep"])
        try await EndToEnd.run("expiry", settings: settings, brokerDownAtStart: true) { env in
            let gateway = env.gateway
            var expiring: [String] = [], expiringQoS0: [String] = [], durable: [String] = []
            let firstSent = ContinuousClock.now
            // Interleaved, so the forwarder meets expired rows between live ones.
            for index in 0..<3 {
                for (resource, via) in [("exp", "coap"), ("keep", "coap"), ("exp0", "coap"), ("exp", "http"), ("keep", "http"), ("exp0", "http")] {
                    let payload = "\(resource)-\(via)-\(index)"
                    let path = "/\(resource)/d\(index)"
                    if via == "coap" {
                        let response = try await CoAP.post(port: gateway.coapPort, path: path, payload: Array(payload.utf8))
                        try #require(response.code == "2.04", "\(payload): \(response)")
                    } else {
                        let response = try await HTTP.post(gateway.httpURL(path), body: Array(payload.utf8))
                        try #require(response.status == 202, "\(payload): \(response)")
                    }
                    switch resource {
                    case "exp": expiring.append(payload)
                    case "exp0": expiringQoS0.append(payload)
                    default: durable.append(payload)
                    }
                }
            }
            let lastSent = ContinuousClock.now
            let queued = try await PrometheusSamples.scrape(gateway)
            let counted = ContinuousClock.now - firstSent
            func accounted(_ qos: String) -> Double? {
                guard let waiting = queued.value("iotgw_outbox_messages", ["qos": qos]),
                      let expired = queued.value("iotgw_messages_expired_total", ["qos": qos]) else { return nil }
                return waiting + expired
            }
            #expect(accounted("1") == 12, "expiring and durable QoS 1 are queued or counted expired (after \(counted))")
            #expect(accounted("0") == 6, "expiring QoS 0 are kept in memory or counted expired (after \(counted))")
            #expect(queued.value("iotgw_messages_delivered_total", ["qos": "1"]) == 0, "the broker is down")

            // Past the expiry of every one of them, then the broker returns.
            try await Task.sleep(until: lastSent.advanced(by: .milliseconds(6500)))
            try await env.broker.start()
            try await env.subscriber.waitForAll(Set(durable), timeout: MosquittoBroker.afterOutage)
            try await gateway.waitForMetrics("the expired messages to be counted and the outbox empty") {
                $0.value("iotgw_messages_expired_total", ["qos": "1"]) == 6
                    && $0.value("iotgw_messages_expired_total", ["qos": "0"]) == 6
                    && $0.value("iotgw_outbox_messages", ["qos": "1"]) == 0
                    && $0.value("iotgw_outbox_messages", ["qos": "0"]) == 0
            }
            let received = try await env.subscriber.settle(for: .seconds(1))
            let texts = received.map(\.text)
            #expect(Set(texts).isDisjoint(with: expiring), "an expired QoS 1 reading was delivered: \(texts)")
            #expect(Set(texts).isDisjoint(with: expiringQoS0), "an expired QoS 0 reading was delivered: \(texts)")
            #expect(texts.sorted() == durable.sorted(), "exactly the durable readings, once each: \(texts)")
            let metrics = try await PrometheusSamples.scrape(gateway)
            #expect(metrics.value("iotgw_messages_delivered_total", ["qos": "1"]) == 6)
            #expect(metrics.value("iotgw_messages_delivered_total", ["qos": "0"]) == 0)

            // A fresh reading on an expiring mapping is delivered: expiry
            // counts from receipt, it does not drop the mapping's traffic.
            let fresh = try await CoAP.post(port: gateway.coapPort, path: "/exp/fresh", payload: Array("exp-fresh".utf8))
            #expect(fresh.code == "2.04", "\(fresh)")
            let freshQoS0 = try await HTTP.post(gateway.httpURL("/exp0/fresh"), body: Array("exp0-fresh".utf8))
            #expect(freshQoS0.status == 202, "\(freshQoS0)")
            try await env.subscriber.waitForAll(["exp-fresh", "exp0-fresh"], timeout: .seconds(30))
            let after = try await PrometheusSamples.scrape(gateway)
            #expect(after.value("iotgw_messages_expired_total", ["qos": "1"]) == 6)
            #expect(after.value("iotgw_messages_expired_total", ["qos": "0"]) == 6)
            print("expiry: 6 QoS 1 + 6 QoS 0 expired unsent (queue counted after \(counted)), \(durable.count) durable delivered, fresh readings delivered")
        }
    }

    static let ackMappings = """
        - name: confirmed
          resource: /confirmed/{device}
          auth: anonymous
          topic: it/confirmed/{device}
          qos: 1
          ack: delivered
          ack_timeout: 10s
        - name: confirmed-fast
          resource: /confirmed-fast/{device}
          auth: anonymous
          topic: it/confirmed-fast/{device}
          qos: 1
          ack: delivered
          ack_timeout: 1s
        - name: confirmed-qos0
          resource: /confirmed-qos0/{device}
          auth: anonymous
          topic: it/confirmed-qos0/{device}
          qos: 0
          ack: delivered
          ack_timeout: 1s

        """

    /// `ack_timeout` when a mapping does not set it (docs/configuration.md).
    static let defaultAckTimeout: Duration = .seconds(5)

    static func ackSettings() -> GatewaySettings {
        GatewaySettings(mappings: ackMappings)
    }

    @Test("ack: delivered, broker up: HTTP 200 and CoAP 2.04 only once the broker has the message")
    func deliveredSuccess() async throws {
        try await EndToEnd.run("ack-delivered", settings: Self.ackSettings()) { env in
            let gateway = env.gateway
            try await gateway.waitForMetrics("the upstream connection") { $0.value("iotgw_upstream_connected") == 1 }

            let http = try await HTTP.post(gateway.httpURL("/confirmed/h1"), body: Array("confirmed-http".utf8))
            #expect(http.status == 200, "\(http)")
            #expect(http.text == "delivered\n", "\(http)")
            // The answer came after the PUBACK: the gateway had already counted the delivery.
            let afterHTTP = try await PrometheusSamples.scrape(gateway)
            #expect(afterHTTP.value("iotgw_messages_delivered_total", ["qos": "1"]) == 1, "HTTP 200 before the PUBACK was counted")

            let coap = try await CoAP.post(port: gateway.coapPort, path: "/confirmed/c1", payload: Array("confirmed-coap".utf8))
            #expect(coap.code == "2.04", "\(coap)")
            // Piggybacked when the PUBACK came within 0.5 s, else separate after an empty ACK.
            #expect(coap.type == "ACK" || coap.type == "CON", "\(coap)")
            let afterCoAP = try await PrometheusSamples.scrape(gateway)
            #expect(afterCoAP.value("iotgw_messages_delivered_total", ["qos": "1"]) == 2, "CoAP 2.04 before the PUBACK was counted")

            // QoS 0 with ack: delivered: answered once written to the broker.
            let qos0 = try await HTTP.post(gateway.httpURL("/confirmed-qos0/h1"), body: Array("confirmed-qos0".utf8))
            #expect(qos0.status == 200, "\(qos0)")

            let received = try await env.subscriber.waitForAll(["confirmed-http", "confirmed-coap", "confirmed-qos0"], timeout: .seconds(30))
            #expect(received.contains(ReceivedMessage(topic: "it/confirmed/h1", payload: Array("confirmed-http".utf8), qos: 1, retained: false)))
            #expect(received.contains(ReceivedMessage(topic: "it/confirmed/c1", payload: Array("confirmed-coap".utf8), qos: 1, retained: false)))

            let metrics = try await PrometheusSamples.scrape(gateway)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "http", "outcome": "delivered"]) == 2)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "http", "outcome": "accepted"]) == 0)
            // The CoAP 2.04 of an `ack: delivered` mapping is a delivery too.
            #expect(metrics.value("iotgw_requests_total", ["protocol": "coap", "outcome": "delivered"]) == 1,
                    "CoAP ack: delivered success not counted as outcome=delivered")
            #expect(metrics.value("iotgw_requests_total", ["protocol": "coap", "outcome": "timeout"]) == 0)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "http", "outcome": "timeout"]) == 0)
        }
    }

    @Test("ack: delivered, broker down: HTTP 504 / CoAP 5.04 after ack_timeout (1s); the message stays queued and is delivered as stored")
    func deliveredTimeout() async throws {
        try await EndToEnd.run("ack-timeout", settings: Self.ackSettings(), brokerDownAtStart: true) { env in
            let gateway = env.gateway
            let clock = ContinuousClock()

            var started = clock.now
            let http = try await HTTP.post(gateway.httpURL("/confirmed-fast/h1"), body: Array("timeout-http".utf8), contentType: "text/plain")
            let httpTook = clock.now - started
            #expect(http.status == 504, "\(http)")
            #expect(!http.text.isEmpty, "504 without diagnostic text")
            // Not before ack_timeout; and the mapping's 1 s, not the 5 s
            // default: no bound tighter than that, however slow the machine.
            #expect(httpTook >= .milliseconds(950), "HTTP 504 after \(httpTook), before ack_timeout (1s)")
            #expect(httpTook < Self.defaultAckTimeout, "HTTP 504 after \(httpTook): the mapping's ack_timeout (1s) was not used")

            started = clock.now
            let coap = try await CoAP.post(port: gateway.coapPort, path: "/confirmed-fast/c1", payload: Array("timeout-coap".utf8))
            let coapTook = clock.now - started
            #expect(coap.code == "5.04" && coap.maxAge == 0, "\(coap)")
            #expect(coap.type == "CON", "5.04 must be a separate response after the empty ACK: \(coap)")
            #expect(coapTook >= .milliseconds(950), "CoAP 5.04 after \(coapTook), before ack_timeout (1s)")
            #expect(coapTook < Self.defaultAckTimeout, "CoAP 5.04 after \(coapTook): the mapping's ack_timeout (1s) was not used")

            // QoS 0 cannot wait for a broker that is away under the default
            // `drop` policy: refused at once with 5.04 / 504.
            let qos0 = try await HTTP.post(gateway.httpURL("/confirmed-qos0/h1"), body: Array("timeout-qos0".utf8))
            #expect(qos0.status == 504, "\(qos0)")

            // Still queued, exactly as sent.
            let metrics = try await PrometheusSamples.scrape(gateway)
            #expect(metrics.value("iotgw_outbox_messages", ["qos": "1"]) == 2)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "http", "outcome": "timeout"]) == 2)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "coap", "outcome": "timeout"]) == 1)
            let peek = try await QueueCommandTests.json(["peek", "10", "--json"], config: gateway.configPath)
            let stored = (peek["messages"] as? [[String: Any]] ?? []).map {
                ($0["topic"] as? String ?? "?", QueueCommandTests.decodeBase64($0["payload_base64"]))
            }
            #expect(stored.map(\.0) == ["it/confirmed-fast/h1", "it/confirmed-fast/c1"], "\(stored)")
            #expect(stored.map(\.1) == ["timeout-http", "timeout-coap"], "\(stored)")

            // The broker returns: both are delivered, as stored, once each.
            try await env.broker.start()
            try await env.subscriber.waitForAll(["timeout-http", "timeout-coap"], timeout: MosquittoBroker.afterOutage)
            let received = try await env.subscriber.settle(for: .seconds(1))
            #expect(received.sorted { $0.text < $1.text } == [
                ReceivedMessage(topic: "it/confirmed-fast/c1", payload: Array("timeout-coap".utf8), qos: 1, retained: false),
                ReceivedMessage(topic: "it/confirmed-fast/h1", payload: Array("timeout-http".utf8), qos: 1, retained: false),
            ], "\(received)")
            try await gateway.waitForMetrics("the outbox to drain") {
                $0.value("iotgw_outbox_messages", ["qos": "1"]) == 0 && $0.value("iotgw_messages_delivered_total", ["qos": "1"]) == 2
            }
            print("ack: delivered timeout: HTTP 504 after \(httpTook), CoAP 5.04 after \(coapTook); both delivered after the broker returned")
        }
    }
}
