import Foundation
import Testing
@testable import GatewayCore

@Suite("Shadow mappings: configuration and routing")
struct ShadowMappingTests {
    func load(_ mappings: String) throws -> (GatewayConfig?, [String]) {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let path = try fixture.write("gateway.yaml", ConfigFixture.base + "mappings:\n" + mappings)
        do {
            return (try ConfigLoader.load(path: path), [])
        } catch {
            return (nil, error.issues.map { "\($0.location.line):\($0.location.column): \($0.message)" })
        }
    }

    @Test func aShadowMappingGetsItsUpdateTopicAndDefaults() throws {
        let (config, issues) = try load("""
              - name: lamp
                resource: /things/{device}/shadow
                identity: device
                shadow: {thing: "{device}"}
              - name: lamp-config
                resource: /things/{device}/config
                shadow: {thing: "site-{device}", name: config, answer: desired, timeout: 2s, offline: queue}

            """)
        #expect(issues == [])
        let rules = try #require(config?.mappings)
        #expect(rules[0].topic.text == "$aws/things/{device}/shadow/update")
        #expect(rules[0].methods == [.get, .put, .post])
        #expect(rules[0].shadow == ShadowBinding(thing: rules[0].shadow!.thing))
        #expect(rules[0].shadow?.timeout == 5)
        #expect(rules[0].shadow?.offline == .refuse)
        #expect(rules[1].topic.text == "$aws/things/site-{device}/shadow/name/config/update")
        #expect(rules[1].shadow?.answer == .desired)
        #expect(rules[1].shadow?.timeout == 2)
        #expect(rules[1].shadow?.offline == .queue)
    }

    @Test func badShadowMappingsAreRefusedWithTheirPlace() throws {
        let (_, issues) = try load("""
              - name: a
                resource: /a/{device}
                topic: x/y
                qos: 1
                shadow: {thing: "{device}"}
              - name: b
                resource: /b/{device}
                shadow: {thing: "{other}", answer: everything}
              - name: c
                resource: /c/{device}
                methods: [GET, PATCH]
                shadow: {thing: "my thing", timeout: 5m}
              - name: d
                resource: /d/{device}
                shadow: {name: config}

            """)
        #expect(issues.contains("13:12: 'topic' does not apply to a shadow mapping: it answers from the thing's shadow topics"), "\(issues)")
        #expect(issues.contains("14:10: 'qos' does not apply to a shadow mapping: it answers from the thing's shadow topics"), "\(issues)")
        #expect(issues.contains("18:21: shadow thing uses {other}, which is not a variable of the resource"), "\(issues)")
        #expect(issues.contains("18:40: shadow answer must be 'document', 'state' or 'desired', got 'everything'"), "\(issues)")
        #expect(issues.contains("21:20: method 'PATCH' cannot be mapped to a shadow; use GET, PUT, POST"), "\(issues)")
        #expect(issues.contains { $0.hasPrefix("22:21: shadow thing 'my thing': a thing name may hold only") }, "\(issues)")
        #expect(issues.contains("22:42: shadow timeout must be a duration between 100ms and 60s"), "\(issues)")
        #expect(issues.contains("25:13: missing required key 'thing' in shadow"), "\(issues)")
    }

    @Test func routingRendersTheThingAndRefusesNamesAWSWouldNot() throws {
        let (config, issues) = try load("""
              - name: lamp
                resource: /things/{device}/shadow
                auth: anonymous
                shadow: {thing: "{device}"}

            """)
        #expect(issues == [])
        let router = Router(rules: try #require(config?.mappings), gatewayName: "gw-01", limits: .awsIotCore)
        func route(_ thing: String) -> Result<Route, IngressRejection> {
            router.route(IngressRequest(ingress: .http, method: .get, path: ["things", thing, "shadow"], contentType: nil, payload: [], peer: "127.0.0.1:1"))
        }
        let good = try route("lamp-1:a_b").get()
        #expect(ShadowAddress(updateTopic: good.topic) == ShadowAddress(thing: "lamp-1:a_b"))
        guard case .failure(.badRequest(let reason)) = route("lamp 1") else {
            Issue.record("a thing name with a space must be refused")
            return
        }
        #expect(reason.contains("thing name"))
        guard case .failure(.badRequest) = route(String(repeating: "x", count: 129)) else {
            Issue.record("a thing name over 128 bytes must be refused")
            return
        }
    }

    @Test func addressesAndTheirTopics() {
        let named = ShadowAddress(thing: "t1", name: "config")
        #expect(named.topic(.get) == "$aws/things/t1/shadow/name/config/get")
        #expect(named.responses(.update) == "$aws/things/t1/shadow/name/config/update/+")
        #expect(named.description == "t1~config")
        #expect(ShadowAddress(updateTopic: "$aws/things/t1/shadow/name/config/update") == named)
        #expect(ShadowAddress(updateTopic: "$aws/things/t1/shadow/update") == ShadowAddress(thing: "t1"))
        #expect(ShadowAddress(updateTopic: "$aws/things/t1/shadow/get") == nil)
        #expect(ShadowAddress(updateTopic: "dt/t1/shadow/update") == nil)
    }
}

@Suite("Shadow messages")
struct ShadowMessagesTests {
    func object(_ bytes: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    @Test func reportedStateIsWrappedAndADocumentPassesWithItsVersion() throws {
        let wrapped = try ShadowMessages.updateRequest(body: Array(#"{"temp":21.5,"on":true}"#.utf8), clientToken: "tok").get()
        let plain = try #require(object(wrapped))
        #expect(plain["clientToken"] as? String == "tok")
        #expect(((plain["state"] as? [String: Any])?["reported"] as? [String: Any])?["temp"] as? Double == 21.5)

        let document = try ShadowMessages.updateRequest(
            body: Array(#"{"state":{"reported":{"a":1},"desired":null},"version":7}"#.utf8), clientToken: nil
        ).get()
        let parsed = try #require(object(document))
        #expect((parsed["version"] as? NSNumber)?.intValue == 7)
        #expect(parsed["clientToken"] == nil)
        #expect((parsed["state"] as? [String: Any])?["desired"] is NSNull)

        // Extra keys make it reported state, not a document.
        let other = try ShadowMessages.updateRequest(body: Array(#"{"state":{"reported":{"a":1}},"mode":2}"#.utf8), clientToken: "t").get()
        #expect(((object(other)?["state"] as? [String: Any])?["reported"] as? [String: Any])?["mode"] != nil)
    }

    @Test func bodiesThatAreNotAnObjectOrTooLargeAreRefused() {
        for body in ["21.5", "[1,2]", "", "{broken"] {
            guard case .failure(.badRequest) = ShadowMessages.updateRequest(body: Array(body.utf8), clientToken: "t") else {
                Issue.record("'\(body)' must be a bad request")
                continue
            }
        }
        let large = Array(("{\"a\":\"" + String(repeating: "x", count: 9000) + "\"}").utf8)
        guard case .failure(.payloadTooLarge(let limit, _)) = ShadowMessages.updateRequest(body: large, clientToken: "t") else {
            Issue.record("a 9 KB update must be too large")
            return
        }
        #expect(limit == 8192)
    }

    @Test func answersBecomeRepliesAndAWSCodesBecomeTheStatusContract() throws {
        let address = ShadowAddress(thing: "t1")
        let document = Array(#"{"state":{"desired":{"x":1},"reported":{"x":0},"delta":{"x":1}},"version":4,"timestamp":1,"clientToken":"c"}"#.utf8)
        let answer = try #require(ShadowMessages.decode(document))
        #expect(answer.clientToken == "c")
        let whole = try answer.reply(accepted: true, operation: .get, answer: .document, address: address).get()
        #expect(whole.kind == .content)
        #expect(object(whole.body)?["clientToken"] == nil)
        #expect((object(whole.body)?["version"] as? NSNumber)?.intValue == 4)
        let desired = try answer.reply(accepted: true, operation: .get, answer: .desired, address: address).get()
        #expect(String(decoding: desired.body, as: UTF8.self) == #"{"x":1}"#)
        let updated = try answer.reply(accepted: true, operation: .update, answer: .state, address: address).get()
        #expect(updated.kind == .changed)
        #expect(String(decoding: updated.body, as: UTF8.self) == #"{"version":4}"#)

        func rejected(_ code: Int) -> IngressRejection? {
            let payload = Array(#"{"code":\#(code),"message":"m","clientToken":"c"}"#.utf8)
            guard case .failure(let rejection) = ShadowMessages.decode(payload)?.reply(accepted: false, operation: .update, answer: .document, address: address) else { return nil }
            return rejection
        }
        #expect(rejected(409)?.outcome == .conflict)
        #expect(rejected(404)?.outcome == .notFound)
        #expect(rejected(400)?.outcome == .badRequest)
        #expect(rejected(413)?.outcome == .payloadTooLarge)
        #expect(rejected(429)?.outcome == .tooManyRequests)
        #expect(rejected(403)?.outcome == .badGateway)
        #expect(rejected(500)?.outcome == .badGateway)
        #expect(rejected(503)?.outcome == .unavailable)
        #expect(rejected(409)?.reason.contains("m") == true)
    }
}

@Suite("Command mappings: configuration")
struct CommandMappingTests {
    func load(_ mappings: String) throws -> (GatewayConfig?, [String]) {
        try ShadowMappingTests().load(mappings)
    }

    @Test func aCommandMappingTakesATopicFilterAndDefaults() throws {
        let (config, issues) = try load("""
              - name: cmds
                resource: /commands/{device}
                identity: device
                commands: {topic: "cmd/{device}/#"}

            """)
        #expect(issues == [])
        let rule = try #require(config?.mappings.first)
        #expect(rule.methods == [.get])
        #expect(rule.topic.text == "cmd/{device}/#")
        #expect(rule.commands?.keep == 10)
        #expect(rule.commands?.expiry == 3600)
        #expect(rule.commands?.format == .raw)
    }

    @Test func badCommandMappingsAreRefusedWithTheirPlace() throws {
        let (_, issues) = try load("""
              - name: a
                resource: /a/{device}
                qos: 1
                commands: {topic: "cmd/#/{device}"}
              - name: b
                resource: /b/{device}
                commands: {topic: "cmd/all", keep: -1, format: xml}
              - name: c
                resource: /c/{device}
                methods: [POST]
                commands: {topic: "cmd/{nobody}/x+", expiry: 30d}
              - name: d
                resource: /d/{device}
                commands: {topic: "$aws/things/{device}/shadow/update/delta"}

            """)
        #expect(issues.contains { $0.contains("'qos' does not apply to a commands mapping") }, "\(issues)")
        #expect(issues.contains { $0.contains("'#' must be a whole level, and the last") }, "\(issues)")
        #expect(issues.contains { $0.contains("commands topic must name the device through a path variable") }, "\(issues)")
        #expect(issues.contains { $0.contains("commands format must be 'raw' or 'envelope', got 'xml'") }, "\(issues)")
        #expect(issues.contains { $0.contains("method 'POST' cannot be mapped to commands; use GET") }, "\(issues)")
        #expect(issues.contains { $0.contains("'+' must be a whole level") }, "\(issues)")
        #expect(issues.contains { $0.contains("commands expiry must be a duration between 1s and 7d") }, "\(issues)")
        #expect(issues.contains { $0.contains("commands keep") }, "\(issues)")
        #expect(issues.contains { $0.contains("'$' topics are the broker's own") }, "\(issues)")
    }
}
