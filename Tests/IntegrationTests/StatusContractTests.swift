import Foundation
import Testing

/// Every row of the status table, through both protocols, each error with a
/// non-empty diagnostic text — and nothing published for a refused request.
@Suite("Status contract")
struct StatusContractTests {
    @Test("no mapping: 4.04 / 404; mapping without the method: 4.05 / 405 with Allow; protocol not listed: 4.04 / 404")
    func notFoundAndMethodNotAllowed() async throws {
        try await EndToEnd.run("status-404-405") { env in
            let gateway = env.gateway
            let body = Array("1".utf8)

            for path in ["/nope", "/sensors/a", "/sensors/a/temperature/extra", "/"] {
                let coap = try await CoAP.post(port: gateway.coapPort, path: path, payload: body)
                #expect(coap.code == "4.04" && coap.maxAge == 300, "CoAP POST \(path): \(coap)")
                #expect(!coap.diagnostic.isEmpty, "CoAP POST \(path): no diagnostic text")
                let http = try await HTTP.post(gateway.httpURL(path), body: body)
                #expect(http.status == 404, "HTTP POST \(path): \(http)")
                #expect(!http.text.isEmpty, "HTTP POST \(path): no diagnostic text")
            }

            // The coap-only mapping does not exist for HTTP.
            let httpOnCoAPOnly = try await HTTP.post(gateway.httpURL("/coap-only/d1"), body: body)
            #expect(httpOnCoAPOnly.status == 404, "HTTP on a coap-only mapping: \(httpOnCoAPOnly)")
            let coapOnly = try await CoAP.post(port: gateway.coapPort, path: "/coap-only/d1", payload: body)
            #expect(coapOnly.code == "2.04", "CoAP on a coap-only mapping: \(coapOnly)")

            for method in ["patch", "delete"] {
                let coap = try await CoAP.request(method, port: gateway.coapPort, path: "/sensors/a/temperature",
                                                  payload: method == "delete" ? nil : body)
                #expect(coap.code == "4.05" && coap.maxAge == 300, "CoAP \(method.uppercased()): \(coap)")
                #expect(!coap.diagnostic.isEmpty, "CoAP \(method.uppercased()): no diagnostic text")

                let http = try await HTTP.request(method, gateway.httpURL("/sensors/a/temperature"),
                                                  body: method == "delete" ? nil : body)
                #expect(http.status == 405, "HTTP \(method.uppercased()): \(http)")
                #expect(!http.text.isEmpty, "HTTP \(method.uppercased()): no diagnostic text")
                let allow = Set((http.header("Allow") ?? "").split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces).uppercased()
                })
                #expect(allow == ["POST", "PUT"], "HTTP \(method.uppercased()): Allow is \(allow), want POST, PUT")
            }

            let received = try await env.subscriber.waitFor(count: 1)
            #expect(received.map(\.topic) == ["it/coap-only/d1"], "\(received)")
            let settled = try await env.subscriber.settle(for: .milliseconds(500))
            #expect(settled.count == 1, "a refused request was published: \(settled)")
        }
    }

    /// Path segments (as written in the URI) whose decoded value must never
    /// reach a topic.
    static let unsafeSegments: [(segment: String, why: String)] = [
        ("a+b", "'+' wildcard"),
        ("%2B", "'+' percent-encoded"),
        ("%23", "'#' wildcard"),
        ("a%2Fb", "'/' inside one segment"),
        ("%24SYS", "leading '$'"),
        ("$x", "leading '$', literal"),
        ("%00", "NUL"),
        ("a%00b", "NUL inside"),
        ("a%0Ab", "newline (control character)"),
        ("%01", "control character"),
        ("%FF%FE", "invalid UTF-8"),
        ("%C3", "truncated UTF-8"),
    ]

    @Test("unsafe variable values (+ # / $ NUL control invalid-UTF-8): 4.00 / 400, nothing published")
    func unsafeVariables() async throws {
        try await EndToEnd.run("status-400") { env in
            let gateway = env.gateway
            for (segment, why) in Self.unsafeSegments {
                let path = "/sensors/\(segment)/temperature"
                let coap = try await CoAP.post(port: gateway.coapPort, path: path, payload: Array("1".utf8))
                #expect(coap.code == "4.00", "CoAP \(path) (\(why)): \(coap)")
                #expect(!coap.diagnostic.isEmpty, "CoAP \(path) (\(why)): no diagnostic text")

                let http = try await HTTP.post(gateway.httpURL(path), body: Array("1".utf8))
                #expect(http.status == 400, "HTTP \(path) (\(why)): \(http)")
                #expect(!http.text.isEmpty, "HTTP \(path) (\(why)): no diagnostic text")
            }
            // A safe value still works afterwards, and is the only thing published.
            let ok = try await HTTP.post(gateway.httpURL("/sensors/safe-1/temperature"), body: Array("1".utf8))
            #expect(ok.status == 202, "\(ok)")
            let received = try await env.subscriber.waitFor(count: 1)
            let settled = try await env.subscriber.settle(for: .milliseconds(500))
            #expect(settled.map(\.topic) == ["it/sensors/safe-1/temperature"], "unsafe values were published: \(received)")
        }
    }

    @Test("body larger than max_body: 4.13 / 413 (CoAP single datagram and Block1), the limit itself accepted")
    func payloadTooLarge() async throws {
        try await EndToEnd.run("status-413", settings: GatewaySettings(coapMaxBody: 64, httpMaxBody: 64)) { env in
            let gateway = env.gateway
            let atLimit = [UInt8](repeating: UInt8(ascii: "a"), count: 64)
            let over = [UInt8](repeating: UInt8(ascii: "b"), count: 65)
            let farOver = [UInt8](repeating: UInt8(ascii: "c"), count: 4000)  // Block1 from coap-client

            let coapAtLimit = try await CoAP.post(port: gateway.coapPort, path: "/sensors/limit/temperature", payload: atLimit)
            #expect(coapAtLimit.code == "2.04", "CoAP 64 bytes with max_body 64: \(coapAtLimit)")
            let httpAtLimit = try await HTTP.post(gateway.httpURL("/sensors/limit/humidity"), body: atLimit)
            #expect(httpAtLimit.status == 202, "HTTP 64 bytes with max_body 64: \(httpAtLimit)")

            for body in [over, farOver] {
                let coap = try await CoAP.post(port: gateway.coapPort, path: "/sensors/big/temperature", payload: body)
                #expect(coap.code == "4.13", "CoAP \(body.count) bytes: \(coap)")
                #expect(!coap.diagnostic.isEmpty, "CoAP \(body.count) bytes: no diagnostic text")
                let http = try await HTTP.post(gateway.httpURL("/sensors/big/temperature"), body: body)
                #expect(http.status == 413, "HTTP \(body.count) bytes: \(http)")
                #expect(!http.text.isEmpty, "HTTP \(body.count) bytes: no diagnostic text")
            }
            // Block1 with a small block size, so the refusal comes mid-transfer.
            let blocks = try await CoAP.request("post", port: gateway.coapPort, path: "/sensors/big/temperature",
                                                payload: farOver, blockSize: 16)
            #expect(blocks.code == "4.13", "CoAP Block1 (16-byte blocks) past the limit: \(blocks)")

            let received = try await env.subscriber.waitFor(count: 2)
            let settled = try await env.subscriber.settle(for: .milliseconds(500))
            #expect(Set(settled.map(\.topic)) == ["it/sensors/limit/temperature", "it/sensors/limit/humidity"], "\(received)")
            #expect(settled.allSatisfy { $0.payload == atLimit })
        }
    }

    @Test("outbox full (broker down, max_messages 3): 5.03 with Max-Age / 503 with Retry-After; accepted ones delivered later")
    func outboxFull() async throws {
        try await EndToEnd.run("status-503", settings: GatewaySettings(outboxMaxMessages: 3), brokerDownAtStart: true) { env in
            let gateway = env.gateway
            let first = try await CoAP.post(port: gateway.coapPort, path: "/sensors/q1/temperature", payload: Array("1".utf8))
            let second = try await HTTP.post(gateway.httpURL("/sensors/q2/temperature"), body: Array("2".utf8))
            let third = try await CoAP.post(port: gateway.coapPort, path: "/sensors/q3/temperature", payload: Array("3".utf8))
            #expect(first.code == "2.04", "\(first)")
            #expect(second.status == 202, "\(second)")
            #expect(third.code == "2.04", "\(third)")

            let coap = try await CoAP.post(port: gateway.coapPort, path: "/sensors/q4/temperature", payload: Array("4".utf8))
            #expect(coap.code == "5.03", "CoAP with a full outbox: \(coap)")
            #expect((coap.maxAge ?? 0) > 0, "5.03 without Max-Age: \(coap)")
            #expect(!coap.diagnostic.isEmpty, "5.03 without diagnostic text")

            let http = try await HTTP.post(gateway.httpURL("/sensors/q5/temperature"), body: Array("5".utf8))
            #expect(http.status == 503, "HTTP with a full outbox: \(http)")
            #expect(Int(http.header("Retry-After") ?? "") ?? 0 > 0, "503 without a Retry-After in seconds: \(http)")
            #expect(!http.text.isEmpty, "503 without diagnostic text")

            // The broker returns: the three accepted ones arrive, and there is room again.
            try await env.broker.start()
            let received = try await env.subscriber.waitFor(count: 3, timeout: MosquittoBroker.afterOutage)
            #expect(Set(received.map(\.topic)) == ["it/sensors/q1/temperature", "it/sensors/q2/temperature", "it/sensors/q3/temperature"],
                    "\(received)")
            let again = try await eventually(timeout: .seconds(30), interval: .milliseconds(500), "room in the outbox") { () -> HTTPResponse? in
                let response = try await HTTP.post(gateway.httpURL("/sensors/q6/temperature"), body: Array("6".utf8))
                return response.status == 202 ? response : nil
            }
            #expect(again.status == 202)
            try await env.subscriber.waitUntil("q6 delivered") { $0.contains { $0.topic == "it/sensors/q6/temperature" } }
            let topics = env.subscriber.messages().map(\.topic)
            #expect(!topics.contains("it/sensors/q4/temperature") && !topics.contains("it/sensors/q5/temperature"),
                    "a refused (5.03/503) message was published: \(topics)")
        }
    }
}
