import Foundation
import Testing

/// Readings in through real clients (`coap-client-notls`, `curl`), out on
/// the mapped topics with the exact bytes, as a real subscriber sees them.
@Suite("Delivery: CoAP and HTTP to MQTT")
struct DeliveryTests {
    /// Every byte value, so nothing in the path may treat the body as text.
    static let allBytes: [UInt8] = (0...255).map { UInt8($0) } + (0...255).reversed().map { UInt8($0) }

    /// Exactly one message per expected topic, with the exact payload, at
    /// the mapped QoS, not retained, and nothing else.
    static func expectExactly(_ expected: [String: (payload: [UInt8], qos: Int)], in received: [ReceivedMessage]) {
        for (topic, want) in expected {
            let got = received.filter { $0.topic == topic }
            #expect(got.count == 1, "\(topic): \(got.count) messages, want 1; all: \(received)")
            if let message = got.first {
                #expect(message.payload == want.payload, "\(topic): payload differs: \(message)")
                #expect(message.qos == want.qos, "\(topic): QoS \(message.qos), want \(want.qos)")
                #expect(!message.retained, "\(topic): retained")
            }
        }
        #expect(received.count == expected.count, "unexpected extra messages: \(received)")
    }

    @Test("CoAP CON and NON POST/PUT: 2.04, exact payloads on the mapped topics at the mapped QoS")
    func coap() async throws {
        try await EndToEnd.run("coap-delivery") { env in
            let port = env.gateway.coapPort
            let json = Array(#"{"t":21.5,"unit":"C"}"#.utf8)

            let con = try await CoAP.post(port: port, path: "/sensors/kitchen-1/temperature", payload: json, contentFormat: 50)
            #expect(con.code == "2.04", "CON POST: \(con)")
            #expect(con.type == "ACK" || con.type == "CON", "a CON request is answered by ACK (piggybacked) or CON (separate): \(con)")

            let non = try await CoAP.post(
                port: port, path: "/sensors/hall-2/humidity", payload: Array("55".utf8), contentFormat: 0, confirmable: false
            )
            #expect(non.code == "2.04", "NON POST: \(non)")
            #expect(non.type == "NON", "a NON request gets a NON response: \(non)")

            let nonQoS1 = try await CoAP.post(
                port: port, path: "/sensors/cellar/temperature", payload: Array("12.5".utf8), confirmable: false
            )
            #expect(nonQoS1.code == "2.04", "NON POST on a QoS 1 mapping: \(nonQoS1)")
            #expect(nonQoS1.type == "NON", "\(nonQoS1)")

            let put = try await CoAP.request("put", port: port, path: "/sensors/attic/temperature", payload: Self.allBytes, contentFormat: 42)
            #expect(put.code == "2.04", "CON PUT with binary: \(put)")

            // Query strings take no part in matching.
            let query = try await CoAP.post(port: port, path: "/sensors/porch/temperature?unit=C&x=1", payload: Array("7".utf8))
            #expect(query.code == "2.04", "CON POST with a query: \(query)")

            // A body bigger than one datagram: coap-client sends it with Block1,
            // the gateway reassembles it.
            let large = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let block = try await CoAP.post(port: port, path: "/sensors/garage/temperature", payload: large, contentFormat: 42)
            #expect(block.code == "2.04", "Block1 POST of 5000 bytes: \(block)")

            try await env.subscriber.waitFor(count: 6)
            Self.expectExactly([
                "it/sensors/kitchen-1/temperature": (json, 1),
                "it/sensors/hall-2/humidity": (Array("55".utf8), 0),
                "it/sensors/cellar/temperature": (Array("12.5".utf8), 1),
                "it/sensors/attic/temperature": (Self.allBytes, 1),
                "it/sensors/porch/temperature": (Array("7".utf8), 1),
                "it/sensors/garage/temperature": (large, 1),
            ], in: try await env.subscriber.settle(for: .milliseconds(500)))
        }
    }

    @Test("HTTP POST and PUT: 202, exact payloads on the mapped topics; PATCH only where the mapping lists it")
    func http() async throws {
        try await EndToEnd.run("http-delivery") { env in
            let gateway = env.gateway
            let json = Array(#"{"rh":41}"#.utf8)

            let post = try await HTTP.post(gateway.httpURL("/sensors/kitchen-1/temperature"), body: json, contentType: "application/json")
            #expect(post.status == 202, "POST: \(post)")

            let put = try await HTTP.request("PUT", gateway.httpURL("/sensors/kitchen-1/humidity"), body: Self.allBytes,
                                             headers: ["Content-Type": "application/octet-stream"])
            #expect(put.status == 202, "PUT: \(put)")

            let patch = try await HTTP.request("PATCH", gateway.httpURL("/things/valve-3/state"), body: Array("open".utf8),
                                               headers: ["Content-Type": "text/plain"])
            #expect(patch.status == 202, "PATCH on a mapping that lists PATCH: \(patch)")

            // Query strings take no part in matching.
            let query = try await HTTP.post(gateway.httpURL("/sensors/porch/temperature?unit=C"), body: Array("7".utf8))
            #expect(query.status == 202, "POST with a query: \(query)")

            // An empty body is still a reading.
            let empty = try await HTTP.post(gateway.httpURL("/sensors/empty/temperature"), body: [])
            #expect(empty.status == 202, "POST with an empty body: \(empty)")

            let notAllowed = try await HTTP.request("PATCH", gateway.httpURL("/sensors/kitchen-1/temperature"), body: Array("x".utf8))
            #expect(notAllowed.status == 405, "PATCH on a POST/PUT mapping: \(notAllowed)")
            let allow = (notAllowed.header("Allow") ?? "").uppercased()
            #expect(allow.contains("POST") && allow.contains("PUT") && !allow.contains("PATCH"), "Allow: '\(allow)'")

            try await env.subscriber.waitFor(count: 5)
            Self.expectExactly([
                "it/sensors/kitchen-1/temperature": (json, 1),
                "it/sensors/kitchen-1/humidity": (Self.allBytes, 0),
                "it/things/valve-3/state": (Array("open".utf8), 1),
                "it/sensors/porch/temperature": (Array("7".utf8), 1),
                "it/sensors/empty/temperature": ([], 1),
            ], in: try await env.subscriber.settle(for: .milliseconds(500)))
        }
    }

    @Test("retain and {gateway}: a retained mapping is delivered retained to a later subscriber")
    func retainAndGatewayVariable() async throws {
        var settings = GatewaySettings()
        settings.name = "gw-retain:1"
        settings.mappings = """
            - name: heartbeat
              resource: /devices/{device}/heartbeat
              auth: anonymous
              topic: it/status/{gateway}/{device}/heartbeat
              qos: 1
              retain: true

            """
        try await EndToEnd.run("retain", settings: settings) { env in
            let response = try await CoAP.post(port: env.gateway.coapPort, path: "/devices/d7/heartbeat", payload: Array("alive".utf8))
            #expect(response.code == "2.04", "\(response)")
            let live = try await env.subscriber.waitFor(count: 1)
            #expect(live.first?.topic == "it/status/gw-retain:1/d7/heartbeat", "\(live)")
            #expect(live.first?.text == "alive")

            // A new subscriber gets it from the broker's retained store, flagged.
            let late = try await Subscriber.started(on: env.broker, topicFilters: ["it/status/#"])
            let retained = try await late.waitFor(count: 1)
            #expect(retained.first?.retained == true, "\(retained)")
            #expect(retained.first?.text == "alive")
            await late.stop()
        }
    }
}
