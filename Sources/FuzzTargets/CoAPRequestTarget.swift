import CoAPIngress
import Foundation
import GatewayCore

/// `coap_request`: the CoAP request path after libcoap, as the engine runs
/// it (`CoAPRequestAdmission`: method, Block1 reassembly, size limits,
/// Uri-Path decoding, Uri-Query), then authentication and routing through
/// the fixture's mapping table, and the envelope of a routed request.
///
/// Input: one flags byte, then up to 32 CoAP messages in their UDP form,
/// each after a 2-byte big-endian length. The messages of one input share
/// a Block1 assembler, so a block-wise body can arrive across them.
/// Flags: bit 0, over DTLS (with lamp-1's PSK identity); bit 1, that PSK
/// is wrong; bit 2, from an IPv6 peer; bit 3, a minute passes between
/// messages (so transfers go idle and expire).
package enum CoAPRequestTarget {
    static let maxMessages = 32

    /// The response code of each message that got one, in order.
    @discardableResult
    package static func run(_ input: [UInt8]) -> [UInt32] {
        let fixture = FuzzFixture.shared
        var reader = ByteReader(input[...])
        var codes: [UInt32] = []
        guard let flags = reader.byte() else { return codes }
        let secure = flags & 1 != 0
        let peer = flags & 4 != 0 ? "[2001:db8::1]:5683" : "192.0.2.1:5683"
        let step: TimeInterval = flags & 8 != 0 ? 61 : 0.5
        // Small limits, so inputs reach them.
        var assembler = Block1Assembler(maxBody: fixture.maxBody, maxTransfers: 4, idleTimeout: 60)
        var now: TimeInterval = 1000
        var count = 0
        while count < maxMessages, let message = reader.chunk() {
            count += 1
            now += step
            guard let fields = CoAPMessage.requestFields(message) else { continue }
            switch CoAPRequestAdmission.decide(
                fields, peer: peer, secure: secure, maxBody: fixture.maxBody, assembler: &assembler, now: now
            ) {
            case .reply(let reply):
                codes.append(check(reply))
            case .request(var request, let echo):
                if secure {
                    let key = flags & 2 != 0 ? Array("wrong".utf8) : FuzzFixture.lampKey
                    request.credential = .psk(identity: "lamp-1", key: key)
                }
                codes.append(check(CoAPRequestAdmission.withEcho(route(request, fixture), echo)))
            }
        }
        return codes
    }

    /// What the pipeline would answer before the outbox: a refusal, or 2.04.
    static func route(_ request: IngressRequest, _ fixture: FuzzFixture) -> CoAPReply {
        let authentication = fixture.authenticator.authenticate(request.credential, transport: request.transport)
        switch fixture.router.route(request, authentication: authentication) {
        case .success(let route):
            if case .failure(let rejection) = Shaping.messages(request, route, fixture) {
                return CoAPReply(rejection)
            }
            return .changed
        case .failure(let rejection):
            return CoAPReply(rejection)
        }
    }

    /// Invariants of every answer: a CoAP response code, and a diagnostic
    /// that fits the 200 bytes `CoAPPDU.write` sends of it.
    static func check(_ reply: CoAPReply) -> UInt32 {
        let codeClass = reply.code / 100
        precondition((2...5).contains(codeClass) && reply.code % 100 < 32, "not a CoAP response code: \(reply.code)")
        if reply.code >= 400 {
            precondition(reply.outcome != nil, "a refusal without an outcome")
        }
        return reply.code
    }
}
