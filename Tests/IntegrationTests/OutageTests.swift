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
            let received = try await env.subscriber.waitForAll(acknowledged, timeout: .seconds(90))
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
            let gateway = env.gateway
            let requests = (0..<1200).map {
                CoAPLoad.Request(path: ["sensors", "load-\($0 % 40)", "temperature"], payload: Array("mid-\($0)".utf8))
            }
            let load = CoAPLoad()
            let coapPort = gateway.coapPort
            async let outcome = load.run(port: coapPort, requests: requests, sockets: 20, window: 2, timeout: .seconds(120))

            try await eventually(timeout: .seconds(60), "300 answers before stopping the broker") {
                load.answered.load(ordering: .relaxed) >= 300 ? true : nil
            }
            try await env.broker.stop()
            let answeredAtStop = load.answered.load(ordering: .relaxed)
            try await eventually(timeout: .seconds(60), "the gateway to keep answering with the broker down") {
                load.answered.load(ordering: .relaxed) >= answeredAtStop + 200 ? true : nil
            }
            try await env.broker.start()

            let result = try await outcome
            #expect(result.histogram == ["2.04": requests.count], "responses: \(result.histogram)")
            let acknowledged = Set(result.accepted.map { "mid-\($0)" })
            let received = try await env.subscriber.waitForAll(acknowledged, timeout: .seconds(120))
            let accounting = Accounting(acknowledged: acknowledged, received: received)
            #expect(accounting.lost.isEmpty, "\(accounting)")
            print("broker restart mid-load: \(accounting)")
        }
    }
}
