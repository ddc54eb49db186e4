import Foundation
import Testing

/// `payload: senml` and `payload: json` end to end: packs and bodies made
/// by independent encoders (Python's cbor2, hand-written JSON) in through
/// coap-client and curl, out at a real MQTT subscriber.
@Suite("Body formats: SenML and CBOR to JSON")
struct FormatsTests {
    static let mappings = """
        - name: senml-pack
          resource: /senml/{device}
          auth: anonymous
          topic: dt/{device}/pack
          qos: 1
          payload: senml
        - name: senml-records
          resource: /records/{device}
          auth: anonymous
          topic: dt/{device}/{name}
          qos: 1
          payload: senml
          batch: true
        - name: json
          resource: /json/{device}
          auth: anonymous
          topic: it/json/{device}
          qos: 1
          payload: json

        """
    static let settings = GatewaySettings(mappings: mappings)

    /// The one message on `topic`.
    static func only(_ topic: String, in received: [ReceivedMessage]) throws -> ReceivedMessage {
        let matching = received.filter { $0.topic == topic }
        #expect(matching.count == 1, "\(topic): \(matching.count) messages, want 1; all: \(received)")
        return try #require(matching.first, "nothing on \(topic)")
    }

    @Test("SenML pack mode: CBOR (cbor2) and JSON packs over CoAP 112/110 and HTTP become one normalized pack each; relative times absolute")
    func senmlPacks() async throws {
        try await EndToEnd.run("formats-senml-pack", settings: Self.settings) { env in
            let gateway = env.gateway
            let cbor = try await FormatFixtures.cbor(FormatFixtures.absoluteCBOR)
            let json = Array(FormatFixtures.absoluteJSON.utf8)

            let coapCBOR = try await CoAP.post(port: gateway.coapPort, path: "/senml/c112", payload: cbor, contentFormat: 112)
            let coapJSON = try await CoAP.post(port: gateway.coapPort, path: "/senml/c110", payload: json, contentFormat: 110)
            let httpCBOR = try await HTTP.post(gateway.httpURL("/senml/h-cbor"), body: cbor, contentType: "application/senml+cbor")
            let httpJSON = try await HTTP.post(gateway.httpURL("/senml/h-json"), body: json, contentType: "application/senml+json")
            #expect([coapCBOR.code, coapJSON.code] == [String](["2.04", "2.04"]), "\(coapCBOR) \(coapJSON)")
            #expect([httpCBOR.status, httpJSON.status] == [Int]([202, 202]), "\(httpCBOR) \(httpJSON)")

            // Relative times, timed around each request.
            let relativeCBOR = try await FormatFixtures.cbor(FormatFixtures.relativeCBOR)
            let coapRelativeSent = Date()
            let coapRelative = try await CoAP.post(port: gateway.coapPort, path: "/senml/c-rel", payload: relativeCBOR, contentFormat: 112)
            let coapRelativeAnswered = Date()
            let httpRelativeSent = Date()
            let httpRelative = try await HTTP.post(gateway.httpURL("/senml/h-rel"), body: Array(FormatFixtures.relativeJSON.utf8),
                                                   contentType: "application/senml+json")
            let httpRelativeAnswered = Date()
            #expect(coapRelative.code == "2.04" && httpRelative.status == 202, "\(coapRelative) \(httpRelative)")

            let received = try await env.subscriber.waitFor(count: 6)
            #expect(received.count == 6, "\(received)")
            for device in ["c112", "c110", "h-cbor", "h-json"] {
                let message = try Self.only("dt/\(device)/pack", in: received)
                #expect(message.qos == 1 && !message.retained, "\(message)")
                let records = try FormatFixtures.Record.pack(message.payload)
                #expect(records == FormatFixtures.absoluteRecords, "\(device): \(records)\nwant \(FormatFixtures.absoluteRecords)")
            }
            FormatFixtures.expectRelative(
                try FormatFixtures.Record.pack(try Self.only("dt/c-rel/pack", in: received).payload),
                FormatFixtures.relativeCBORRecords, sentAfter: coapRelativeSent, answeredBefore: coapRelativeAnswered, "CoAP relative CBOR"
            )
            FormatFixtures.expectRelative(
                try FormatFixtures.Record.pack(try Self.only("dt/h-rel/pack", in: received).payload),
                FormatFixtures.relativeJSONRecords, sentAfter: httpRelativeSent, answeredBefore: httpRelativeAnswered, "HTTP relative JSON"
            )
        }
    }

    @Test("SenML batch: true with topic dt/{device}/{name}: one message per record on its own topic, in pack order, answered with the count")
    func senmlRecords() async throws {
        try await EndToEnd.run("formats-senml-records", settings: Self.settings) { env in
            let gateway = env.gateway
            let cbor = try await FormatFixtures.cbor(FormatFixtures.absoluteCBOR)
            let json = Array(FormatFixtures.absoluteJSON.utf8)
            let count = FormatFixtures.absoluteRecords.count

            let coap = try await CoAP.post(port: gateway.coapPort, path: "/records/c1", payload: cbor, contentFormat: 112)
            #expect(coap.code == "2.04", "\(coap)")
            #expect(coap.bodyText == #"{"accepted":\#(count)}"#, "CoAP batch answer body: '\(coap.bodyText)'")
            let coapJSON = try await CoAP.post(port: gateway.coapPort, path: "/records/c2", payload: json, contentFormat: 110)
            #expect(coapJSON.code == "2.04" && coapJSON.bodyText == #"{"accepted":\#(count)}"#, "\(coapJSON) '\(coapJSON.bodyText)'")
            let http = try await HTTP.post(gateway.httpURL("/records/h1"), body: json, contentType: "application/senml+json")
            #expect(http.status == 202, "\(http)")
            #expect(http.text == #"{"accepted":\#(count)}"#, "HTTP batch answer body: '\(http.text)'")
            let httpCBOR = try await HTTP.post(gateway.httpURL("/records/h2"), body: cbor, contentType: "application/senml+cbor")
            #expect(httpCBOR.status == 202 && httpCBOR.text == #"{"accepted":\#(count)}"#, "\(httpCBOR)")

            let relativeSent = Date()
            let relative = try await HTTP.post(gateway.httpURL("/records/h-rel"), body: Array(FormatFixtures.relativeJSON.utf8),
                                               contentType: "application/senml+json")
            let relativeAnswered = Date()
            #expect(relative.status == 202 && relative.text == #"{"accepted":3}"#, "\(relative)")

            let received = try await env.subscriber.waitFor(count: 4 * count + 3)
            #expect(received.count == 4 * count + 3, "\(received)")
            for device in ["c1", "c2", "h1", "h2"] {
                let mine = received.filter { $0.topic.hasPrefix("dt/\(device)/") }
                let records = try mine.map { try FormatFixtures.Record.one($0.payload) }
                // Each record on the topic its resolved name makes (the name's '/' a topic level).
                #expect(mine.map(\.topic) == FormatFixtures.absoluteRecords.map { "dt/\(device)/\($0.n)" }, "\(device): \(mine)")
                #expect(records == FormatFixtures.absoluteRecords, "\(device): \(records)")
                #expect(mine.allSatisfy { $0.qos == 1 && !$0.retained }, "\(mine)")
            }
            let relativeMessages = received.filter { $0.topic.hasPrefix("dt/h-rel/") }
            #expect(relativeMessages.map(\.topic) == ["dt/h-rel/rel.a", "dt/h-rel/rel.b", "dt/h-rel/rel.c"], "\(relativeMessages)")
            FormatFixtures.expectRelative(
                try relativeMessages.map { try FormatFixtures.Record.one($0.payload) },
                FormatFixtures.relativeJSONRecords, sentAfter: relativeSent, answeredBefore: relativeAnswered, "per-record relative JSON"
            )
        }
    }

    /// A malformed pack: its body, how it is declared, and what the
    /// diagnostic must say.
    struct BadPack {
        var what: String
        var body: [UInt8]
        var cbor: Bool
        var needles: [String]
    }

    static func badPacks() async throws -> [BadPack] {
        [
            BadPack(what: "record without a name", body: Array(#"[{"n":"ok","v":1},{"v":2}]"#.utf8), cbor: false,
                    needles: ["record 1", "no name"]),
            BadPack(what: "record without a name (CBOR)", body: try await FormatFixtures.cbor("[{2: 1}]"), cbor: true,
                    needles: ["record 0", "no name"]),
            BadPack(what: "two values", body: Array(#"[{"n":"ok","v":1},{"n":"x","v":1,"vs":"a"}]"#.utf8), cbor: false,
                    needles: ["record 1", "at most one of v, vs, vb and vd"]),
            BadPack(what: "two values (CBOR)", body: try await FormatFixtures.cbor("[{0: 'x', 2: 1, 4: True}]"), cbor: true,
                    needles: ["at most one of v, vs, vb and vd"]),
            BadPack(what: "vd not base64url", body: Array(#"[{"n":"x","vd":"no base64!"}]"#.utf8), cbor: false,
                    needles: ["vd"]),
            BadPack(what: "vd a number (CBOR)", body: try await FormatFixtures.cbor("[{0: 'x', 8: 5}]"), cbor: true,
                    needles: ["vd"]),
            BadPack(what: "bver 11", body: try await FormatFixtures.cbor("[{-1: 11, 0: 'x', 2: 1}]"), cbor: true,
                    needles: ["version 11"]),
            BadPack(what: "bver 11 (JSON)", body: Array(#"[{"bver":11,"n":"x","v":1}]"#.utf8), cbor: false,
                    needles: ["version 11"]),
            BadPack(what: "truncated CBOR", body: try await FormatFixtures.cbor(FormatFixtures.absoluteCBOR, dropLast: 3), cbor: true,
                    needles: ["CBOR", "ends early"]),
            BadPack(what: "label ending in _", body: Array(#"[{"n":"ok","v":1},{"n":"x","v":1,"foo_":2}]"#.utf8), cbor: false,
                    needles: ["foo_", "must be understood"]),
            BadPack(what: "label ending in _ (CBOR)", body: try await FormatFixtures.cbor("[{0: 'x', 2: 1, 'ext_': 2}]"), cbor: true,
                    needles: ["ext_"]),
        ]
    }

    @Test("malformed packs (no name, two values, bad vd, bver 11, truncated CBOR, label ending in _): 4.00 / 400 saying why, nothing published")
    func malformedPacks() async throws {
        try await EndToEnd.run("formats-senml-bad", settings: Self.settings) { env in
            let gateway = env.gateway
            for bad in try await Self.badPacks() {
                for path in ["/records/bad", "/senml/bad"] {
                    let coap = try await CoAP.post(port: gateway.coapPort, path: path, payload: bad.body, contentFormat: bad.cbor ? 112 : 110)
                    #expect(coap.code == "4.00", "CoAP \(path), \(bad.what): \(coap)")
                    for needle in bad.needles {
                        #expect(coap.diagnostic.contains(needle), "CoAP \(path), \(bad.what): diagnostic '\(coap.diagnostic)' lacks '\(needle)'")
                    }
                    let http = try await HTTP.post(gateway.httpURL(path), body: bad.body,
                                                   contentType: bad.cbor ? "application/senml+cbor" : "application/senml+json")
                    #expect(http.status == 400, "HTTP \(path), \(bad.what): \(http)")
                    for needle in bad.needles {
                        #expect(http.text.contains(needle), "HTTP \(path), \(bad.what): body '\(http.text)' lacks '\(needle)'")
                    }
                }
            }
            // One valid pack on the same routes: its messages are the first and only ones.
            let good = Array(#"[{"bn":"ok.","bt":1700000000,"n":"a","v":1},{"n":"b","v":2}]"#.utf8)
            let coap = try await CoAP.post(port: gateway.coapPort, path: "/records/bad", payload: good, contentFormat: 110)
            let http = try await HTTP.post(gateway.httpURL("/senml/bad"), body: good, contentType: "application/senml+json")
            #expect(coap.code == "2.04" && http.status == 202, "\(coap) \(http)")
            let received = try await env.subscriber.waitFor(count: 3)
            #expect(Set(received.map(\.topic)) == ["dt/bad/ok.a", "dt/bad/ok.b", "dt/bad/pack"], "a refused pack was published: \(received)")
            #expect(received.count == 3, "\(received)")
            let records = [FormatFixtures.Record("ok.a", t: 1_700_000_000, v: 1), FormatFixtures.Record("ok.b", t: 1_700_000_000, v: 2)]
            #expect(try received.filter { $0.topic != "dt/bad/pack" }.map { try FormatFixtures.Record.one($0.payload) } == records)
            #expect(try FormatFixtures.Record.pack(try Self.only("dt/bad/pack", in: received).payload) == records)
        }
    }

    /// What cbor2 encodes, and its JSON by RFC 8949 §6.1: bytes as base64url.
    static let cborObject = "{'t': 21.5, 'ok': True, 'tags': ['a', 'b'], 'none': None, 'raw': b'\\x01\\x02\\xff', 'big': 1099511627776, 'neg': -7, 'nested': {'k': [1.5, False, 'é']}}"
    static let cborObjectJSON = #"{"t":21.5,"ok":true,"tags":["a","b"],"none":null,"raw":"AQL_","big":1099511627776,"neg":-7,"nested":{"k":[1.5,false,"é"]}}"#

    @Test("payload: json: CBOR (cbor2) arrives as JSON over CoAP 60 and HTTP; JSON passes byte for byte; text/plain gets 4.15 / 415")
    func cborToJSON() async throws {
        try await EndToEnd.run("formats-json", settings: Self.settings) { env in
            let gateway = env.gateway
            // Refused first, on the topics the valid ones use afterwards.
            let text = Array("21.5".utf8)
            let coapText = try await CoAP.post(port: gateway.coapPort, path: "/json/c-json", payload: text, contentFormat: 0)
            #expect(coapText.code == "4.15", "CoAP text/plain on payload: json: \(coapText)")
            #expect(coapText.diagnostic.contains("application/json"), "4.15 should name what is accepted: \(coapText)")
            let httpText = try await HTTP.post(gateway.httpURL("/json/h-json"), body: text, contentType: "text/plain")
            #expect(httpText.status == 415, "HTTP text/plain on payload: json: \(httpText)")
            #expect(httpText.text.contains("application/json"), "415 should name what is accepted: \(httpText)")

            let cbor = try await FormatFixtures.cbor(Self.cborObject)
            // Keys, spacing and number spelling a JSON encoder would not keep.
            let json = Array(#"{ "b" : 1,  "a":[1, 2.50, "\u00e9", 1e2] }"#.utf8)
            let r1 = try await CoAP.post(port: gateway.coapPort, path: "/json/c-cbor", payload: cbor, contentFormat: 60)
            let r2 = try await HTTP.post(gateway.httpURL("/json/h-cbor"), body: cbor, contentType: "application/cbor")
            let r3 = try await CoAP.post(port: gateway.coapPort, path: "/json/c-json", payload: json, contentFormat: 50)
            let r4 = try await HTTP.post(gateway.httpURL("/json/h-json"), body: json, contentType: "application/json")
            #expect(r1.code == "2.04" && r3.code == "2.04", "\(r1) \(r3)")
            #expect(r2.status == 202 && r4.status == 202, "\(r2) \(r4)")

            let received = try await env.subscriber.waitFor(count: 4)
            #expect(received.count == 4, "\(received)")
            let want = try JSONSerialization.jsonObject(with: Data(Self.cborObjectJSON.utf8)) as? NSDictionary
            for device in ["c-cbor", "h-cbor"] {
                let message = try Self.only("it/json/\(device)", in: received)
                let got = try JSONSerialization.jsonObject(with: Data(message.payload)) as? NSDictionary
                #expect(got == want, "\(device): \(message)")
                // NSDictionary equality takes 1 and 1.0 as equal: integers are checked as written.
                #expect(message.text.contains(#""big":1099511627776"#) && message.text.contains(#""neg":-7"#), "\(message)")
            }
            for device in ["c-json", "h-json"] {
                let message = try Self.only("it/json/\(device)", in: received)
                #expect(message.payload == json, "JSON must pass unchanged: \(message)")
            }
        }
    }
}
