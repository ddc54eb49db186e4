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
    /// One block of a longer answer (RFC 7959), with the whole one's size
    /// and a tag of its version, so a client notices it changed between blocks.
    var block2: UInt32?
    var size2: UInt32?
    var etag: [UInt8]?
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

    /// How long (s) an answer holds that depends only on the request and
    /// the mapping table (4.00, 4.02, 4.04, 4.05, 4.13, 4.15): the same
    /// request gets it again, so its Max-Age says a retry is useless until
    /// the device changes the request (or the operator the table).
    static let definitiveMaxAge: UInt32 = 300

    /// The status contract: each rejection's CoAP code, with the reason as
    /// diagnostic payload. 5.08 is never used (see docs/architecture.md).
    /// Max-Age: `definitiveMaxAge` on answers a retry cannot change; 0 on
    /// 5.00, 5.02 and 5.04, which a retry may well change (without it a
    /// cache would keep them the default 60 s); the retry hint on 5.03 and 4.29.
    package init(_ rejection: IngressRejection) {
        self.init(classifying: rejection)
        switch rejection {
        case .notFound, .methodNotAllowed, .badRequest, .payloadTooLarge, .unsupportedMediaType:
            maxAge = Self.definitiveMaxAge
        case .internalError, .badGateway, .timeout:
            maxAge = 0
        case .unavailable, .tooManyRequests, .unauthorized, .forbidden, .conflict:
            break
        }
    }

    private init(classifying rejection: IngressRejection) {
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
