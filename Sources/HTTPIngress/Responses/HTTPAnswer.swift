import GatewayCore

/// What the gateway answers to one HTTP request: the status contract in one
/// place, as a plain value so it can be tested without a socket.
package struct HTTPAnswer: Equatable, Sendable {
    struct Header: Equatable, Sendable {
        var name: String
        var value: String
    }

    package var status: UInt32
    var headers: [Header]
    var body: String
    /// A body that may not be text (a command's payload): sent instead of `body`.
    var bytes: [UInt8]?
    /// What metrics count this answer as.
    var outcome: RequestOutcome

    static let contentType = Header(name: "Content-Type", value: "text/plain; charset=utf-8")
    /// The protection space named in `WWW-Authenticate`.
    static let realm = "iot-gateway"

    /// The message is stored (committed, or queued for QoS 0).
    static let accepted = HTTPAnswer(status: 202, headers: [contentType], body: "accepted\n", outcome: .accepted)
    /// The broker acknowledged it (`ack: delivered`).
    static let delivered = HTTPAnswer(status: 200, headers: [contentType], body: "delivered\n", outcome: .delivered)

    init(status: UInt32, headers: [Header], body: String, outcome: RequestOutcome) {
        self.status = status
        self.headers = headers
        self.body = body
        self.outcome = outcome
    }

    package init(outcome: Result<Acceptance, IngressRejection>) {
        switch outcome {
        case .success(.stored): self = .accepted
        case .success(.storedBatch(let count)):
            self.init(status: 202, headers: [Header(name: "Content-Type", value: "application/json")], body: "", outcome: .accepted)
            bytes = Acceptance.batchBody(count: count)
        case .success(.delivered): self = .delivered
        case .success(.reply(let reply)) where reply.kind == .unchanged:
            self.init(status: 204, headers: [], body: "", outcome: .served)
        case .success(.reply(let reply)):
            // Shadow documents are JSON, so UTF-8 text.
            var headers = [Header(name: "Content-Type", value: reply.contentType ?? "application/octet-stream")]
            if let command = reply.command {
                // A topic may hold any UTF-8, a header line may not hold CR or LF.
                let value = String(String.UnicodeScalarView(command.topic.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
                headers.append(Header(name: "Command-Topic", value: value))
            }
            self.init(status: 200, headers: headers, body: "", outcome: .served)
            bytes = reply.body
        case .failure(let rejection): self.init(rejection: rejection)
        }
    }

    package init(rejection: IngressRejection) {
        var headers = [Self.contentType]
        let status: UInt32
        switch rejection {
        case .notFound:
            status = 404
        case .methodNotAllowed(let allowed, _):
            status = 405
            // MHD refuses a header with an empty value; the router never
            // produces an empty list, so omitting it loses nothing real.
            if !allowed.isEmpty {
                headers.append(Header(name: "Allow", value: allowed.map(\.rawValue).joined(separator: ", ")))
            }
        case .badRequest:
            status = 400
        case .payloadTooLarge:
            status = 413
        case .unavailable(let seconds, _):
            status = 503
            headers.append(Header(name: "Retry-After", value: String(max(0, seconds))))
        case .internalError:
            status = 500
        case .timeout:
            status = 504
        case .unauthorized(_, let invalid):
            status = 401
            // RFC 6750 for bearer tokens; Basic (RFC 7617) with id:token also works.
            headers.append(Header(
                name: "WWW-Authenticate",
                value: "Bearer realm=\"\(Self.realm)\"" + (invalid ? ", error=\"invalid_token\"" : "")
            ))
            headers.append(Header(name: "WWW-Authenticate", value: "Basic realm=\"\(Self.realm)\", charset=\"UTF-8\""))
        case .forbidden:
            status = 403
        case .conflict:
            status = 409
        case .badGateway:
            status = 502
        case .unsupportedMediaType:
            // The reason lists the media types the mapping accepts.
            status = 415
        case .tooManyRequests(let seconds, _):
            status = 429
            headers.append(Header(name: "Retry-After", value: String(max(0, seconds))))
        }
        self.init(status: status, headers: headers, body: rejection.reason + "\n", outcome: rejection.outcome)
    }
}
