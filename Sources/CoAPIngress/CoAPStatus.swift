import GatewayCore

/// A CoAP response as the gateway decides it, before it is written to a PDU.
/// `package`, with what a fuzz target checks, for CoAPRequestAdmission.
package struct CoAPReply: Equatable {
    /// Response code as `class * 100 + detail`, e.g. 204 for 2.04.
    package var code: UInt32
    package var diagnostic: String?
    var maxAge: UInt32?
    var size1: UInt32?
    var block1: Block1Option?
    /// A body other than the diagnostic (a shadow document), with its format.
    var payload: [UInt8]?
    var contentFormat: UInt32?
    /// The Observe sequence number of a registration's answer or a notification.
    var observe: UInt32?
    /// What metrics count this answer as; nil for 2.31 Continue, which is not
    /// a final answer.
    package var outcome: RequestOutcome?

    package static let changed = CoAPReply(code: 204, outcome: .accepted)

    /// 2.04 for an acceptance: CoAP has one code for both, metrics keep them
    /// apart. A reply with content is 2.05 (or 2.04 for an update) with its body.
    static func changed(_ acceptance: Acceptance) -> CoAPReply {
        if case .storedBatch(let count) = acceptance {
            var answer = CoAPReply(code: 204, outcome: .accepted)
            answer.payload = Acceptance.batchBody(count: count)
            answer.contentFormat = 50
            return answer
        }
        guard case .reply(let reply) = acceptance else {
            return CoAPReply(code: 204, outcome: RequestOutcome(acceptance))
        }
        let code: UInt32
        switch reply.kind {
        case .content: code = 205
        case .changed: code = 204
        case .unchanged: code = 203
        }
        var answer = CoAPReply(code: code, outcome: .served)
        answer.payload = reply.body
        answer.contentFormat = reply.contentType.flatMap(ContentFormats.number(for:))
        return answer
    }
    init(
        code: UInt32, outcome: RequestOutcome?, diagnostic: String? = nil,
        maxAge: UInt32? = nil, size1: UInt32? = nil, block1: Block1Option? = nil
    ) {
        self.code = code
        self.outcome = outcome
        self.diagnostic = diagnostic
        self.maxAge = maxAge
        self.size1 = size1
        self.block1 = block1
    }

    /// The status contract: each rejection's CoAP code, with the reason as
    /// diagnostic payload. 5.08 is never used (see docs/architecture.md).
    package init(_ rejection: IngressRejection) {
        switch rejection {
        case .notFound(let reason):
            self.init(code: 404, outcome: rejection.outcome, diagnostic: reason)
        case .methodNotAllowed(_, let reason):
            self.init(code: 405, outcome: rejection.outcome, diagnostic: reason)
        case .badRequest(let reason):
            self.init(code: 400, outcome: rejection.outcome, diagnostic: reason)
        case .payloadTooLarge(let limit, let reason):
            self.init(code: 413, outcome: rejection.outcome, diagnostic: reason, size1: UInt32(clamping: limit))
        case .unavailable(let retryAfter, let reason):
            self.init(code: 503, outcome: rejection.outcome, diagnostic: reason, maxAge: UInt32(clamping: retryAfter))
        case .internalError(let reason):
            self.init(code: 500, outcome: rejection.outcome, diagnostic: reason)
        case .timeout(let reason):
            self.init(code: 504, outcome: rejection.outcome, diagnostic: reason)
        case .unauthorized(let reason, _):
            self.init(code: 401, outcome: rejection.outcome, diagnostic: reason)
        case .forbidden(let reason):
            self.init(code: 403, outcome: rejection.outcome, diagnostic: reason)
        case .conflict(let reason):
            self.init(code: 412, outcome: rejection.outcome, diagnostic: reason)
        case .badGateway(let reason):
            self.init(code: 502, outcome: rejection.outcome, diagnostic: reason)
        case .unsupportedMediaType(_, let reason):
            self.init(code: 415, outcome: rejection.outcome, diagnostic: reason)
        case .tooManyRequests(let retryAfter, let reason):
            // RFC 8516: Max-Age says when a retry may succeed.
            self.init(code: 429, outcome: rejection.outcome, diagnostic: reason, maxAge: UInt32(clamping: retryAfter))
        }
    }
}
