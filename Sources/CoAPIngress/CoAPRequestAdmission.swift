import Foundation
import GatewayCore

/// The part of taking a CoAP request that needs no libcoap: method, Block1
/// reassembly, size limits, Uri-Path decoding and Uri-Query reading, from
/// the fields `CoAPPDU.read` took out of the PDU. The engine and the
/// `coap_request` fuzz target both go through here, so what the fuzzer
/// exercises is what the gateway runs.
package enum CoAPRequestAdmission {
    package enum Decision {
        /// Answer now, without the pipeline.
        case reply(CoAPReply)
        /// Hand this request on; the final answer echoes `echo`, the last
        /// Block1 option of a block-wise body (nil otherwise).
        case request(IngressRequest, echo: Block1Option?)
    }

    /// `assembler` keeps block-wise transfers between requests. A secure
    /// request is marked `.secure`; its credential is the caller's to add
    /// (it lives in the DTLS session).
    package static func decide(
        _ fields: CoAPRequestFields, peer: String, secure: Bool, maxBody: Int,
        assembler: inout Block1Assembler, now: TimeInterval
    ) -> Decision {
        guard let method = CoAPPDU.method(code: fields.methodCode) else {
            return .reply(CoAPReply(code: 405, outcome: .methodNotAllowed, diagnostic: "unsupported method code"))
        }

        var body = fields.payload
        var echo: Block1Option?
        if let block = fields.block1 {
            let key = Block1Assembler.Key(peer: peer, method: fields.methodCode, path: fields.path, secure: secure)
            switch assembler.receive(block, size1: fields.size1, payload: fields.payload, key: key, now: now) {
            case .needMore(let next):
                return .reply(CoAPReply(code: 231, outcome: nil, block1: next))
            case .complete(let whole, let last):
                body = whole
                echo = last
            case .incomplete(let reason):
                return .reply(CoAPReply(code: 408, outcome: .badRequest, diagnostic: reason))
            case .tooLarge(let limit):
                return .reply(CoAPReply(.payloadTooLarge(limit: limit, reason: "body larger than \(limit) bytes")))
            case .malformed(let reason):
                return .reply(CoAPReply(code: 400, outcome: .badRequest, diagnostic: reason))
            }
        } else {
            if let size1 = fields.size1, size1 > maxBody {
                return .reply(CoAPReply(.payloadTooLarge(limit: maxBody, reason: "body larger than \(maxBody) bytes")))
            }
            if body.count > maxBody {
                return .reply(CoAPReply(.payloadTooLarge(limit: maxBody, reason: "body larger than \(maxBody) bytes")))
            }
        }

        let path: [String]
        switch PathDecoding.coapPath(fields.path) {
        case .success(let decoded): path = decoded
        case .failure(let rejection): return .reply(withEcho(CoAPReply(rejection), echo))
        }
        var request = IngressRequest(
            ingress: .coap, method: method, path: path,
            contentType: fields.contentFormat.map(ContentFormats.mediaType(for:)),
            payload: body, peer: peer
        )
        if secure {
            request.transport = .secure
        }
        for option in fields.query {
            let text = String(decoding: option, as: UTF8.self)
            let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if let name = parts.first.map(String.init), IngressRequest.queryNames.contains(name) {
                request.query[name] = parts.count > 1 ? String(parts[1]) : ""
            }
        }
        return .request(request, echo: echo)
    }

    package static func withEcho(_ reply: CoAPReply, _ echo: Block1Option?) -> CoAPReply {
        var reply = reply
        reply.block1 = echo
        return reply
    }
}
