import Foundation
import Testing
@testable import GatewayCore

/// CBOR is the adapter's (CBORCodecTests); here a decoder that must not be reached.
private struct NoCBOR: CBORDecoding {
    func decode(_ bytes: [UInt8]) -> Result<StructuredValue, FormatError> { .failure(FormatError("no CBOR here")) }
}

@Suite("Payload shaping")
struct PayloadShaperTests {
    let shaper = PayloadShaper(cbor: NoCBOR(), gateway: "gw")

    func route(payload: PayloadFormat, batch: Bool = false, accept: [String]? = nil, topic: String = "dt/{device}") -> Route {
        let rule = MappingRule(
            name: "m", resource: try! ResourcePattern.parse("/s/{device}").get(), topic: try! TopicTemplate.parse(topic).get(),
            payload: payload, batch: batch,
            accept: accept ?? MappingCompiler.defaultAccept(payload, batch: batch),
            location: SourceLocation(file: "x", line: 1, column: 1)
        )
        return Route(rule: rule, topic: "dt/d1", variables: [("device", "d1")], shardKey: "dt/d1", templateValues: ["device": "d1"])
    }

    func request(_ body: String, type: String?) -> IngressRequest {
        IngressRequest(ingress: .http, method: .post, path: ["s", "d1"], contentType: type, payload: Array(body.utf8), peer: "p",
                       receivedAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    func texts(_ messages: [ShapedMessage]) -> [String] { messages.map { String(decoding: $0.payload, as: UTF8.self) } }

    @Test(arguments: [
        ("application/json", "application/json"),
        ("Application/JSON", "application/json"),
        ("text/plain;charset=utf-8", "text/plain"),
        (" application/senml+json ; charset=utf-8", "application/senml+json"),
        ("\tapplication/cbor\t", "application/cbor"),
        (";q=1", ""),
        ("", ""),
    ])
    func mediaTypeBaseDropsParametersAndCase(_ declared: String, _ base: String) {
        #expect(ContentFormats.base(of: declared) == base)
    }

    @Test func ndjsonBatchIsOneMessagePerLine() throws {
        let shaped = try shaper.shape(request("{\"n\":1}\n{\"n\":2}\n", type: "application/x-ndjson"), route: route(payload: .raw, batch: true))
        #expect(texts(shaped) == [#"{"n":1}"#, #"{"n":2}"#])
    }

    @Test func oneBadElementRefusesTheBatchWithItsIndex() {
        #expect(throws: IngressRejection.badRequest(reason: "element 1 (line 2) is not valid JSON; nothing was accepted")) {
            try shaper.shape(request("{\"n\":1}\n{oops\n", type: "application/x-ndjson"), route: route(payload: .raw, batch: true))
        }
    }

    @Test func undeclaredMediaTypeIsRefusedWith415() {
        #expect {
            try shaper.shape(request("x", type: "text/plain"), route: route(payload: .json))
        } throws: { error in
            guard case .unsupportedMediaType(let accepted, _) = error as? IngressRejection else { return false }
            return accepted == ["application/json", "application/cbor"]
        }
    }

    @Test func senmlBatchGivesOneMessagePerRecordWithItsName() throws {
        let shaped = try shaper.shape(
            request(#"[{"bn":"d1:","n":"t","v":1},{"n":"h","v":2}]"#, type: "application/senml+json"),
            route: route(payload: .senml, batch: true, topic: "dt/{device}/{name}")
        )
        #expect(shaped.map(\.recordName) == ["d1:t", "d1:h"])
        #expect(texts(shaped)[1] == #"{"n":"d1:h","t":1800000000,"v":2}"#)
    }

    @Test func envelopeBatchWrapsEachElement() throws {
        let shaped = try shaper.shape(request("[1, {\"a\":2}]", type: "application/json"), route: route(payload: .envelope, batch: true))
        #expect(shaped.count == 2)
        let second = try #require(JSONSerialization.jsonObject(with: Data(shaped[1].payload)) as? [String: Any])
        #expect((second["payload"] as? [String: Int]) == ["a": 2])
    }

    /// Foundation's parser takes these; a body let through as JSON is published as it came.
    @Test func jsonBeyondRFC8259IsNotJSON() {
        for body in ["[1,2,]", "{\"a\":1 ,\n}", "\u{FEFF}[1]"] {
            #expect(!StrictJSON.isValid(Array(body.utf8)), "\(body.debugDescription)")
            #expect(throws: IngressRejection.self) { try shaper.shape(request(body, type: "application/json"), route: route(payload: .json)) }
            #expect(Envelope.classify(Array(body.utf8), contentType: "application/json") == .text(body))
        }
        #expect(throws: IngressRejection.badRequest(reason: "element 1 (line 2) is not valid JSON; nothing was accepted")) {
            try shaper.shape(request("{\"n\":1}\n{\"n\":2,}\n", type: "application/x-ndjson"), route: route(payload: .raw, batch: true))
        }
        for body in [#"[1, "a,]", {"b":",}"}]"#, "[]", "{}", " [ 1 , 2 ] "] {
            #expect(StrictJSON.isValid(Array(body.utf8)), "\(body)")
        }
    }

    @Test func recordTopicsRefuseNamesThatWouldMakeEmptyLevels() throws {
        let route = route(payload: .senml, batch: true, topic: "dt/{device}/{name}")
        #expect(throws: IngressRejection.self) { try route.topic(forRecord: "a//b").get() }
        #expect((try? route.topic(forRecord: "a/b").get()) == "dt/d1/a/b")
    }
}
