import Foundation
import Testing

/// The broker goes away: the gateway keeps accepting and storing, and when
/// the broker returns everything acknowledged arrives.
@Suite("Broker outages")
struct OutageTests {
    @Test("broker down when the gateway starts: CoAP and HTTP still accepted, all delivered once it is up")
    func brokerDownAtStart() async throws {
        try await EndToEnd.run("outage-at-start", brokerDownAtStart: true) { env in
            let gateway = env.gateway
            var acknowledged = Set<String>()
            for index in 0..<8 {
                let payload = "down-coap-\(index)"
                let response = try await CoAP.post(port: gateway.coapPort, path: "/sensors/c\(index)/temperature",
                                                   payload: Array(payload.utf8), confirmable: index % 2 == 0)
                #expect(response.code == "2.04", "\(payload): \(response)")
                if response.code == "2.04" { acknowledged.insert(payload) }

                let httpPayload = "down-http-\(index)"
                let http = try await HTTP.post(gateway.httpURL("/sensors/h\(index)/temperature"), body: Array(httpPayload.utf8))
                #expect(http.status == 202, "\(httpPayload): \(http)")
                if http.status == 202 { acknowledged.insert(httpPayload) }
            }
            #expect(env.subscriber.messages().isEmpty)

            try await env.broker.start()
            let received = try await env.subscriber.waitForAll(acknowledged, timeout: MosquittoBroker.afterOutage)
            let accounting = Accounting(acknowledged: acknowledged, received: received)
            #expect(accounting.lost.isEmpty, "\(accounting)")
            #expect(acknowledged.count == 16)
            // Topics follow the mapping too.
            for message in received where message.text.hasPrefix("down-coap-") {
                let index = message.text.dropFirst("down-coap-".count)
                #expect(message.topic == "it/sensors/c\(index)/temperature", "\(message)")
            }
        }
    }

    @Test("broker stopped and restarted mid-load: every 2.04 is delivered (lost = 0)")
    func brokerRestartMidLoad() async throws {
        try await EndToEnd.run("outage-mid-load") { env in
            // A stream rather than a fixed list: a fixed list could be used
            // up before the broker is down, leaving nothing to answer during
            // the outage. Rate-limited, so the test stays the same size
            // however fast the machine is.
            let settings = CoAPLoad.Settings(sockets: 20, window: 2, ratePerSecond: 400, timeout: .seconds(240))
            let (_, outcome) = try await CoAPLoad.during(port: env.gateway.coapPort, settings: settings, make: { socket, sequence in
                CoAPLoad.Request(path: ["sensors", "load-\(socket)", "temperature"], payload: Array("mid-\(socket)-\(sequence)".utf8))
            }) { load in
                try await load.waitFor(300, "before stopping the broker")
                try await env.broker.stop()
                try await load.waitFor(200, "with the broker down")
                try await env.broker.start()
                try await load.waitFor(200, "after the broker returned")
            }
            #expect(outcome.histogram == ["2.04": outcome.records.count], "responses: \(outcome.histogram)")
            let acknowledged = outcome.acknowledged
            let received = try await env.subscriber.waitForAll(acknowledged, timeout: .seconds(120))
            let accounting = Accounting(acknowledged: acknowledged, received: received)
            #expect(accounting.lost.isEmpty, "\(accounting)")
            print("broker restart mid-load: \(accounting)")
        }
    }
}
