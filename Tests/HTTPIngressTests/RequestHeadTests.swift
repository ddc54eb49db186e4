import GatewayCore
@testable import HTTPIngress
import Testing

@Suite("Method mapping and body limits")
struct RequestHeadTests {
    @Test(arguments: [
        ("GET", RequestMethod.get), ("POST", .post), ("PUT", .put), ("PATCH", .patch), ("DELETE", .delete),
    ])
    func knownMethodsMap(name: String, method: RequestMethod) {
        let routed = RoutedMethod(http: name)
        #expect(routed.method == method)
        #expect(routed.unmapped == nil)
        #expect(routed.name == name)
    }

    @Test(arguments: ["HEAD", "OPTIONS", "TRACE", "CONNECT", "post", "FETCH", "IPATCH"])
    func otherMethodsUseTheStandIn(name: String) {
        let routed = RoutedMethod(http: name)
        #expect(routed.method == RoutedMethod.standIn)
        #expect(!RequestMethod.publishable.contains(routed.method))
        #expect(routed.unmapped == name)
    }

    @Test func standInRefusalNamesTheClientsMethod() {
        let routed = RoutedMethod(http: "OPTIONS")
        let adjusted = routed.adjusted(.methodNotAllowed(allowed: [.post, .put], reason: "method FETCH not allowed"))
        #expect(adjusted == .methodNotAllowed(allowed: [.post, .put], reason: "method OPTIONS not allowed; allowed: POST, PUT"))
        // Other refusals pass unchanged.
        #expect(routed.adjusted(.notFound(reason: "no mapping for /x")) == .notFound(reason: "no mapping for /x"))
        #expect(RoutedMethod(http: "GET").adjusted(.methodNotAllowed(allowed: [.post], reason: "r"))
            == .methodNotAllowed(allowed: [.post], reason: "r"))
    }

    @Test func unmappedMethodNameIsSanitised() {
        #expect(RoutedMethod(http: "BR\u{7}EW\u{E9}").unmapped == "BR?EW?")
        #expect(RoutedMethod(http: String(repeating: "X", count: 100)).unmapped?.count == 32)
    }

    @Test func contentLengthWithinLimit() {
        #expect(BodyLimit.framing(transferEncoding: nil, contentLength: "10", maxBody: 10) == .length(10))
        #expect(BodyLimit.framing(transferEncoding: nil, contentLength: nil, maxBody: 10) == .length(0))
    }

    @Test func contentLengthOverLimitIsRefusedAtOnce() {
        guard case .refuse(.payloadTooLarge(let limit, _)) =
            BodyLimit.framing(transferEncoding: nil, contentLength: "11", maxBody: 10) else {
            Issue.record("expected payloadTooLarge")
            return
        }
        #expect(limit == 10)
    }

    @Test func chunkedIsCheckedWhileStreaming() {
        #expect(BodyLimit.framing(transferEncoding: "chunked", contentLength: nil, maxBody: 10) == .chunked)
        #expect(BodyLimit.framing(transferEncoding: " Chunked ", contentLength: "999", maxBody: 10) == .chunked)
    }

    @Test func otherTransferEncodingsAreRefused() {
        guard case .refuse(.badRequest) = BodyLimit.framing(transferEncoding: "gzip, chunked", contentLength: nil, maxBody: 10) else {
            Issue.record("expected badRequest")
            return
        }
    }

    @Test func chunkedBodyPastLimitIsDrainedThenRefused() {
        let context = RequestContext(head: RequestHead(
            method: RoutedMethod(http: "POST"), path: ["a"], contentType: nil, peer: "p", receivedAt: .now
        ))
        let piece = [UInt8](repeating: 1, count: 8)
        piece.withUnsafeBytes { bytes in
            #expect(context.receive(bytes, maxBody: 10))
            #expect(context.body.count == 8)
            #expect(context.receive(bytes, maxBody: 10))  // 16 > 10: dropped, keeps reading
        }
        guard case .tooLarge = context.phase else {
            Issue.record("expected tooLarge")
            return
        }
        #expect(context.body.isEmpty)
        let flood = [UInt8](repeating: 2, count: BodyLimit.drainAllowance)
        flood.withUnsafeBytes { bytes in
            #expect(!context.receive(bytes, maxBody: 10))  // past the drain allowance: disconnect
        }
    }
}
