import Foundation
import Testing
@testable import GatewayCore

@Suite("Envelope")
struct EnvelopeTests {
    let route: Route = {
        let rule = MappingRule(
            name: "t",
            resource: try! ResourcePattern.parse("/s/{device}").get(),
            topic: try! TopicTemplate.parse("dt/{device}").get(),
            payload: .envelope,
            location: SourceLocation(file: "x", line: 1, column: 1)
        )
        return Route(rule: rule, topic: "dt/d\"1", variables: [("device", "d\"1")], shardKey: "dt/d\"1")
    }()

    func envelope(_ payload: [UInt8], contentType: String?) throws -> [String: Any] {
        let request = IngressRequest(
            ingress: .http, method: .post, path: ["s", "d\"1"], contentType: contentType,
            payload: payload, peer: "p", receivedAt: Date(timeIntervalSince1970: 1_764_149_400.123)
        )
        let bytes = Envelope.encode(request: request, route: route, gateway: "gw-01")
        return try #require(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func jsonBodyIsEmbeddedAsJSON() throws {
        let object = try envelope(Array("{\"t\": [1, 2.5, null]}".utf8), contentType: "application/json")
        let payload = try #require(object["payload"] as? [String: Any])
        #expect((payload["t"] as? [Any])?.count == 3)
        #expect(object["payload_encoding"] == nil)
        #expect(object["gateway"] as? String == "gw-01")
        #expect(object["protocol"] as? String == "http")
        #expect(object["method"] as? String == "POST")
        #expect(object["resource"] as? String == "/s/d\"1")
        #expect((object["vars"] as? [String: String]) == ["device": "d\"1"])
        #expect(object["received_at"] as? String == "2025-11-26T09:30:00.123Z")
        #expect(object["content_type"] as? String == "application/json")
    }

    @Test func undeclaredJSONIsEmbeddedToo() throws {
        let object = try envelope(Array("42".utf8), contentType: nil)
        #expect(object["payload"] as? Int == 42)
        #expect(object["content_type"] is NSNull)
    }

    @Test func textIsAString() throws {
        let object = try envelope(Array("21.5 °C\nline\u{1}".utf8), contentType: "text/plain")
        #expect(object["payload"] as? String == "21.5 °C\nline\u{1}")
    }

    @Test func declaredTextThatLooksLikeJSONStaysText() throws {
        let object = try envelope(Array("42".utf8), contentType: "text/plain")
        #expect(object["payload"] as? String == "42")
    }

    @Test func invalidJSONUnderAJSONTypeIsText() throws {
        let object = try envelope(Array("{nope".utf8), contentType: "application/json")
        #expect(object["payload"] as? String == "{nope")
    }

    @Test func binaryIsBase64() throws {
        let bytes: [UInt8] = [0xFF, 0x00, 0xFE, 0x10]
        let object = try envelope(bytes, contentType: "application/octet-stream")
        #expect(object["payload"] as? String == Data(bytes).base64EncodedString())
        #expect(object["payload_encoding"] as? String == "base64")
    }

    @Test func plusJSONMediaTypesCount() {
        #expect(Envelope.isJSONMediaType("application/senml+json"))
        #expect(Envelope.isJSONMediaType("application/json; charset=utf-8"))
        #expect(!Envelope.isJSONMediaType("text/json-ish"))
    }

    @Test func timestampsAreRFC3339WithMilliseconds() {
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 1_798_675_200.5)) == "2026-12-31T00:00:00.500Z")
    }
}
