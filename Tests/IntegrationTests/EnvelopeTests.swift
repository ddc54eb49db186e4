import Foundation
import Testing

/// `payload: envelope`: one JSON object per reading with where, when and how
/// it arrived, and the body as JSON, text or base64.
@Suite("Envelope payloads")
struct EnvelopeTests {
    /// Parses a received envelope; records an issue when it is not a JSON object.
    static func envelope(_ message: ReceivedMessage?) throws -> [String: Any] {
        let message = try #require(message, "no message")
        let object = try JSONSerialization.jsonObject(with: Data(message.payload))
        return try #require(object as? [String: Any], "envelope is not a JSON object: \(message)")
    }

    /// The fields every envelope has, checked against what was sent.
    static func checkCommon(
        _ envelope: [String: Any], protocol expectedProtocol: String, method: String,
        resource: String, vars: [String: String], sentAt: Date
    ) {
        #expect(envelope["gateway"] as? String == "gw-test", "gateway: \(envelope)")
        #expect(envelope["protocol"] as? String == expectedProtocol, "protocol: \(envelope)")
        #expect(envelope["method"] as? String == method, "method: \(envelope)")
        #expect(envelope["resource"] as? String == resource, "resource: \(envelope)")
        #expect(envelope["vars"] as? [String: String] == vars, "vars: \(envelope)")
        let receivedAt = envelope["received_at"] as? String ?? ""
        #expect(receivedAt.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil,
                "received_at is not RFC 3339 UTC with milliseconds: '\(receivedAt)'")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: receivedAt) {
            #expect(abs(date.timeIntervalSince(sentAt)) < 120, "received_at \(receivedAt) is far from now (\(sentAt))")
        } else {
            Issue.record("received_at does not parse: '\(receivedAt)'")
        }
    }

    @Test("HTTP: JSON body embedded as JSON, text as a string, binary as base64 with payload_encoding")
    func http() async throws {
        try await EndToEnd.run("envelope-http") { env in
            let gateway = env.gateway
            let sentAt = Date()
            let json = #"{"t":21.5,"ok":true,"tags":["a","b"],"nested":{"n":null}}"#
            let text = "hello wörld\n\"quoted\" \\ tab\t"
            let binary: [UInt8] = [0x00, 0xFF, 0xFE, 0x80, 0x41, 0x0A]

            let r1 = try await HTTP.post(gateway.httpURL("/env/site-a/dev-1"), body: Array(json.utf8), contentType: "application/json")
            let r2 = try await HTTP.post(gateway.httpURL("/env/site-b/dev-2"), body: Array(text.utf8), contentType: "text/plain; charset=utf-8")
            let r3 = try await HTTP.request("PUT", gateway.httpURL("/env/site-c/dev-3"), body: binary,
                                            headers: ["Content-Type": "application/octet-stream"])
            #expect([r1.status, r2.status, r3.status] == [Int]([202, 202, 202]), "\([r1, r2, r3])")

            let received = try await env.subscriber.waitFor(count: 3)
            let a = try Self.envelope(received.first { $0.topic == "it/env/gw-test/site-a" })
            Self.checkCommon(a, protocol: "http", method: "POST", resource: "/env/site-a/dev-1",
                             vars: ["site": "site-a", "device": "dev-1"], sentAt: sentAt)
            #expect(a["content_type"] as? String == "application/json", "\(a)")
            let payload = try #require(a["payload"] as? [String: Any], "JSON body not embedded as an object: \(a)")
            let expected = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? NSDictionary
            #expect(NSDictionary(dictionary: payload) == expected, "payload: \(payload)")
            #expect(a["payload_encoding"] == nil, "\(a)")

            let b = try Self.envelope(received.first { $0.topic == "it/env/gw-test/site-b" })
            Self.checkCommon(b, protocol: "http", method: "POST", resource: "/env/site-b/dev-2",
                             vars: ["site": "site-b", "device": "dev-2"], sentAt: sentAt)
            #expect(b["content_type"] as? String == "text/plain; charset=utf-8", "\(b)")
            #expect(b["payload"] as? String == text, "text body: \(b)")
            #expect(b["payload_encoding"] == nil, "\(b)")

            let c = try Self.envelope(received.first { $0.topic == "it/env/gw-test/site-c" })
            Self.checkCommon(c, protocol: "http", method: "PUT", resource: "/env/site-c/dev-3",
                             vars: ["site": "site-c", "device": "dev-3"], sentAt: sentAt)
            #expect(c["content_type"] as? String == "application/octet-stream", "\(c)")
            #expect(c["payload_encoding"] as? String == "base64", "\(c)")
            let decoded = (c["payload"] as? String).flatMap { Data(base64Encoded: $0) }.map(Array.init)
            #expect(decoded == binary, "base64 payload: \(c)")
        }
    }

    @Test("CoAP: JSON by Content-Format 50, text without a format (content_type null), binary as base64")
    func coap() async throws {
        try await EndToEnd.run("envelope-coap") { env in
            let port = env.gateway.coapPort
            let sentAt = Date()
            let json = #"[1,2.5,"x",{"k":false}]"#
            let binary: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF, 0x00]

            let r1 = try await CoAP.post(port: port, path: "/env/s1/d1", payload: Array(json.utf8), contentFormat: 50)
            let r2 = try await CoAP.post(port: port, path: "/env/s2/d2", payload: Array("just text".utf8), confirmable: false)
            let r3 = try await CoAP.request("put", port: port, path: "/env/s3/d3", payload: binary, contentFormat: 42)
            #expect([r1.code, r2.code, r3.code] == [String](repeating: "2.04", count: 3), "\([r1, r2, r3])")

            let received = try await env.subscriber.waitFor(count: 3)
            let a = try Self.envelope(received.first { $0.topic == "it/env/gw-test/s1" })
            Self.checkCommon(a, protocol: "coap", method: "POST", resource: "/env/s1/d1",
                             vars: ["site": "s1", "device": "d1"], sentAt: sentAt)
            #expect((a["content_type"] as? String)?.contains("json") == true, "Content-Format 50 as a media type: \(a)")
            let array = try #require(a["payload"] as? [Any], "JSON body not embedded as an array: \(a)")
            #expect(NSArray(array: array) == (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? NSArray))

            let b = try Self.envelope(received.first { $0.topic == "it/env/gw-test/s2" })
            Self.checkCommon(b, protocol: "coap", method: "POST", resource: "/env/s2/d2",
                             vars: ["site": "s2", "device": "d2"], sentAt: sentAt)
            #expect(b["content_type"] is NSNull, "no Content-Format: content_type must be null: \(b)")
            #expect(b["payload"] as? String == "just text", "\(b)")

            let c = try Self.envelope(received.first { $0.topic == "it/env/gw-test/s3" })
            Self.checkCommon(c, protocol: "coap", method: "PUT", resource: "/env/s3/d3",
                             vars: ["site": "s3", "device": "d3"], sentAt: sentAt)
            #expect(c["payload_encoding"] as? String == "base64", "\(c)")
            let decoded = (c["payload"] as? String).flatMap { Data(base64Encoded: $0) }.map(Array.init)
            #expect(decoded == binary, "base64 payload: \(c)")
        }
    }
}
