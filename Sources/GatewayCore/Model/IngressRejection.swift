/// Why a request was not accepted. Each ingress adapter maps these to its own
/// status codes (see the status contract in the README); the `reason` is the
/// short diagnostic text sent back to the device.
public enum IngressRejection: Error, Sendable, Equatable {
    /// No mapping matches the path (4.04 / 404).
    case notFound(reason: String)
    /// A mapping matches the path but not the method (4.05 / 405 with Allow).
    case methodNotAllowed(allowed: [RequestMethod], reason: String)
    /// The request is malformed or a value is unsafe for a topic (4.00 / 400).
    case badRequest(reason: String)
    /// The body is larger than allowed (4.13 / 413).
    case payloadTooLarge(limit: Int, reason: String)
    /// The outbox is full or the gateway is draining (5.03 / 503 with a retry hint).
    case unavailable(retryAfterSeconds: Int, reason: String)
    /// Something failed inside the gateway (5.00 / 500).
    case internalError(reason: String)
    /// `ack: delivered` waited longer than `ack_timeout` (5.04 / 504); the
    /// message stays queued and will still be delivered.
    case timeout(reason: String)
    /// No credentials where a device must authenticate, or credentials that
    /// prove nothing (4.01 / 401 with `WWW-Authenticate`). `invalidCredentials`:
    /// some were presented (HTTP then says `error="invalid_token"`).
    case unauthorized(reason: String, invalidCredentials: Bool)
    /// An authenticated device that may not do this: disabled, not in the
    /// mapping's `allow`, or publishing as another device (4.03 / 403).
    case forbidden(reason: String)
    /// A shadow update named a version that is no longer current (CoAP 4.12
    /// Precondition Failed / HTTP 409): read the shadow again and retry.
    case conflict(reason: String)
    /// The service behind the broker refused or failed the gateway's own
    /// request (its policy, an AWS internal error): 5.02 / 502.
    case badGateway(reason: String)
    /// Too many failed attempts from this source or device (4.29 / 429 with
    /// Max-Age / Retry-After, RFC 8516).
    case tooManyRequests(retryAfterSeconds: Int, reason: String)
    /// The request declared a media type the mapping does not accept
    /// (4.15 / 415); `accepted` lists those it does.
    case unsupportedMediaType(accepted: [String], reason: String)

    public var reason: String {
        switch self {
        case .notFound(let reason), .badRequest(let reason), .internalError(let reason), .timeout(let reason),
             .forbidden(let reason), .conflict(let reason), .badGateway(let reason):
            return reason
        case .methodNotAllowed(_, let reason), .payloadTooLarge(_, let reason), .unavailable(_, let reason),
             .unauthorized(let reason, _), .tooManyRequests(_, let reason), .unsupportedMediaType(_, let reason):
            return reason
        }
    }

    /// A refusal for who sent the request, which counts towards a lockout.
    public var isAuthenticationFailure: Bool {
        switch self {
        case .unauthorized, .forbidden: return true
        default: return false
        }
    }

    /// The outcome metrics and logs count this refusal under.
    public var outcome: RequestOutcome {
        switch self {
        case .notFound: return .notFound
        case .methodNotAllowed: return .methodNotAllowed
        case .badRequest: return .badRequest
        case .payloadTooLarge: return .payloadTooLarge
        case .unavailable: return .unavailable
        case .internalError: return .internalError
        case .timeout: return .timeout
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .tooManyRequests: return .tooManyRequests
        case .conflict: return .conflict
        case .badGateway: return .badGateway
        case .unsupportedMediaType: return .unsupportedMediaType
        }
    }
}

/// How a device's request ended, as one fixed vocabulary for both protocols:
/// the raw values are the `outcome` label of `iotgw_requests_total`.
public enum RequestOutcome: String, Sendable, CaseIterable {
    case accepted
    case delivered
    /// A request/response mapping answered with content (a shadow read or update).
    case served
    case notFound = "not_found"
    case methodNotAllowed = "method_not_allowed"
    case badRequest = "bad_request"
    case payloadTooLarge = "payload_too_large"
    case unavailable
    case timeout
    case internalError = "internal_error"
    case unauthorized
    case forbidden
    case tooManyRequests = "too_many_requests"
    case conflict
    case badGateway = "bad_gateway"
    case unsupportedMediaType = "unsupported_media_type"

    public init(_ acceptance: Acceptance) {
        switch acceptance {
        case .stored, .storedBatch: self = .accepted
        case .delivered: self = .delivered
        case .reply: self = .served
        }
    }
}
