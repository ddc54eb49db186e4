import Foundation
import Testing
@testable import GatewayCore

private func rule(
    _ name: String, _ resource: String, _ topic: String,
    methods: [RequestMethod] = [.post, .put], protocols: Set<IngressProtocol> = [.coap, .http],
    qos: QoS = .atLeastOnce, auth: MappingAuth = .anonymous
) -> MappingRule {
    MappingRule(
        name: name,
        resource: try! ResourcePattern.parse(resource).get(),
        methods: methods, protocols: protocols,
        topic: try! TopicTemplate.parse(topic).get(),
        qos: qos, auth: auth,
        location: SourceLocation(file: "test.yaml", line: 1, column: 1)
    )
}

private func request(_ path: [String], _ method: RequestMethod = .post, over ingress: IngressProtocol = .coap) -> IngressRequest {
    IngressRequest(ingress: ingress, method: method, path: path, contentType: nil, payload: [], peer: "127.0.0.1:1")
}

@Suite("Router")
struct RouterTests {
    let router = Router(rules: [
        rule("temperature", "/sensors/{device}/temperature", "dt/sensors/{device}/temperature"),
        rule("temperature-patch", "/sensors/{device}/temperature", "dt/patch/{device}", methods: [.patch], protocols: [.http]),
        rule("raw", "/raw/{rest*}", "dt/{gateway}/raw/{rest}"),
        rule("coap-only", "/coap/{id}", "dt/coap/{id}", protocols: [.coap]),
    ], gatewayName: "gw-01")

    @Test func routesASingleSegmentVariable() throws {
        let route = try router.route(request(["sensors", "abc", "temperature"])).get()
        #expect(route.topic == "dt/sensors/abc/temperature")
        #expect(route.rule.name == "temperature")
        #expect(route.variables.map(\.value) == ["abc"])
    }

    @Test func restVariableTakesEverySegmentAndGatewayIsSubstituted() throws {
        let route = try router.route(request(["raw", "a", "b", "c"])).get()
        #expect(route.topic == "dt/gw-01/raw/a/b/c")
        #expect(route.variables.first?.value == "a/b/c")
    }

    @Test func restVariableNeedsAtLeastOneSegment() {
        #expect(throws: IngressRejection.self) { try router.route(request(["raw"])).get() }
    }

    @Test func unknownPathIsNotFound() {
        guard case .failure(.notFound(let reason)) = router.route(request(["nope"])) else {
            Issue.record("expected not found"); return
        }
        #expect(reason.contains("/nope"))
    }

    @Test func trailingSlashDoesNotMatch() {
        guard case .failure(.notFound) = router.route(request(["sensors", "abc", "temperature", ""])) else {
            Issue.record("expected not found"); return
        }
    }

    @Test func methodNotListedIsMethodNotAllowedWithTheUnionOfMethods() {
        guard case .failure(.methodNotAllowed(let allowed, _)) = router.route(request(["sensors", "abc", "temperature"], .delete, over: .http)) else {
            Issue.record("expected 405"); return
        }
        #expect(allowed == [.post, .put, .patch])
    }

    @Test func aLaterMappingServesAMethodTheFirstDoesNotList() throws {
        let route = try router.route(request(["sensors", "abc", "temperature"], .patch, over: .http)).get()
        #expect(route.rule.name == "temperature-patch")
        #expect(route.topic == "dt/patch/abc")
    }

    @Test func protocolRestrictionHidesTheMapping() {
        guard case .failure(.notFound) = router.route(request(["coap", "x"], over: .http)) else {
            Issue.record("expected not found over HTTP"); return
        }
        #expect((try? router.route(request(["coap", "x"], over: .coap)).get()) != nil)
    }

    @Test(arguments: ["a+b", "#", "$sys", "", "a\u{0}b", "tab\there", "del\u{7F}", "c1\u{85}"])
    func unsafeValuesAreBadRequests(_ value: String) {
        guard case .failure(.badRequest(let reason)) = router.route(request(["sensors", value, "temperature"])) else {
            Issue.record("expected 400 for \(value.debugDescription)"); return
        }
        #expect(reason.contains("{device}"))
    }

    @Test func slashInsideOneSegmentIsRefused() {
        guard case .failure(.badRequest) = router.route(request(["sensors", "a/b", "temperature"])) else {
            Issue.record("expected 400"); return
        }
    }

    @Test func unsafeSegmentInsideARestVariableIsRefused() {
        guard case .failure(.badRequest) = router.route(request(["raw", "ok", "+"])) else {
            Issue.record("expected 400"); return
        }
    }

    @Test func unicodeValuesAreFine() throws {
        let route = try router.route(request(["sensors", "küche-1", "temperature"])).get()
        #expect(route.topic == "dt/sensors/küche-1/temperature")
    }

    @Test func topicLongerThanTheLimitIsRefused() {
        var tight = UpstreamLimits.generic
        tight.maxTopicBytes = 30
        let small = Router(rules: router.rules, gatewayName: "gw-01", limits: tight)
        guard case .failure(.badRequest(let reason)) = small.route(request(["sensors", String(repeating: "x", count: 20), "temperature"])) else {
            Issue.record("expected 400"); return
        }
        #expect(reason.contains("bytes"))
    }
}

@Suite("Patterns and templates")
struct PatternTests {
    @Test(arguments: [
        ("sensors", "must start with '/'"),
        ("/a//b", "empty path segment"),
        ("/a/{rest*}/b", "must be the last segment"),
        ("/a/{x}/{x}", "appears twice"),
        ("/a/x{y}", "whole segment"),
        ("/a/{1x}", "not a valid variable"),
        ("/a/{gateway}", "reserved"),
    ])
    func badResources(_ text: String, _ message: String) {
        guard case .failure(let error) = ResourcePattern.parse(text) else {
            Issue.record("\(text) should not parse"); return
        }
        #expect(error.description.contains(message))
    }

    @Test func rootResourceMatchesTheEmptyPath() throws {
        let pattern = try ResourcePattern.parse("/").get()
        #expect(pattern.match([]) != nil)
        #expect(pattern.match(["a"]) == nil)
    }

    @Test(arguments: [
        ("dt/+/x", "wildcard '+'"),
        ("dt/#", "wildcard '#'"),
        ("/dt/x", "must not begin or end"),
        ("dt/x/", "must not begin or end"),
        ("dt//x", "'//'"),
        ("dt/{a", "unmatched '{'"),
        ("dt/a}", "unmatched '}'"),
        ("", "must not be empty"),
    ])
    func badTopics(_ text: String, _ message: String) {
        guard case .failure(let error) = TopicTemplate.parse(text) else {
            Issue.record("\(text) should not parse"); return
        }
        #expect(error.description.contains(message))
    }

    @Test func templateVariablesMayBeInsideALevel() throws {
        let template = try TopicTemplate.parse("dt/{device}-raw/{gateway}").get()
        #expect(template.variables == ["device", "gateway"])
        #expect(template.render(["device": "d1", "gateway": "g"]) == "dt/d1-raw/g")
    }
}

@Suite("Path decoding")
struct PathDecodingTests {
    @Test func httpSegmentsAreDecodedOneByOne() throws {
        #expect(try PathDecoding.httpPath("/a%2Fb/c%20d").get() == ["a/b", "c d"])
        #expect(try PathDecoding.httpPath("/").get() == [])
        #expect(try PathDecoding.httpPath("/a/").get() == ["a", ""])
        #expect(try PathDecoding.httpPath("/plus+stays").get() == ["plus+stays"])
        #expect(try PathDecoding.httpPath("//a").get() == ["", "a"])
        #expect(try PathDecoding.httpPath("/sensors/t1/temp").get() == ["sensors", "t1", "temp"])
        #expect(try PathDecoding.httpPath("/caf\u{E9}/x%C3%A9").get() == ["caf\u{E9}", "x\u{E9}"])
    }

    @Test(arguments: ["/bad%zz", "/bad%2", "nopath", "/%ff%fe"])
    func badHTTPPaths(_ raw: String) {
        guard case .failure(.badRequest) = PathDecoding.httpPath(raw) else {
            Issue.record("\(raw) should be refused"); return
        }
    }

    @Test func coapSegmentsMustBeUTF8() {
        #expect((try? PathDecoding.coapPath([Array("ok".utf8)]).get()) == ["ok"])
        #expect((try? PathDecoding.coapPath([Array("caf\u{E9}".utf8), []]).get()) == ["caf\u{E9}", ""])
        #expect((try? PathDecoding.coapPath([[0x61, 0x00, 0x62]]).get()) == ["a\u{0}b"], "NUL is valid UTF-8; the topic check refuses it later")
        for bad: [UInt8] in [[0xFF, 0xFE], [0x61, 0x62, 0xC3], [0x61, 0xED, 0xA0, 0x80]] {
            guard case .failure(.badRequest) = PathDecoding.coapPath([Array("ok".utf8), bad]) else {
                Issue.record("invalid UTF-8 \(bad) should be refused"); return
            }
        }
    }
}
