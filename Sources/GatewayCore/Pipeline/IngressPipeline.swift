/// How a request was accepted.
public enum Acceptance: Sendable, Equatable {
    /// Committed to disk (QoS 1) or queued (QoS 0): CoAP 2.04, HTTP 202.
    case stored
    /// The broker acknowledged it (`ack: delivered`): CoAP 2.04, HTTP 200.
    case delivered
    /// A request/response mapping (a Device Shadow) answered with content.
    case reply(DeviceReply)
}

/// What a request/response mapping sends back to the device.
public struct DeviceReply: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// CoAP 2.05 Content, HTTP 200.
        case content
        /// CoAP 2.04 Changed, HTTP 200.
        case changed
    }

    public var kind: Kind
    public var body: [UInt8]
    /// A media type; CoAP sends the matching Content-Format.
    public var contentType: String

    public init(kind: Kind, body: [UInt8], contentType: String = "application/json") {
        self.kind = kind
        self.body = body
        self.contentType = contentType
    }
}

/// What `accept` did with a request it did not refuse.
public enum IngressAdmission: Sendable, Equatable {
    /// Answer now; the completion will not be called.
    case answered(Acceptance)
    /// The completion will be called exactly once.
    case pending
}

/// What an ingress adapter hands its requests to.
///
/// `accept` routes the request and hands the message to the outbox. It throws
/// at once when the request cannot be accepted (no mapping, unsafe value, outbox
/// full, ...). It returns `.answered` when the answer is known at once (a QoS 0
/// message queued in memory). Otherwise (`.pending`) `completion` is called
/// exactly once, on a thread that is not the caller's and possibly before
/// `accept` returns, when the message is committed or delivered (success) or
/// could not be (failure). Adapters must not block in `completion`: it runs on
/// the outbox writer's or the forwarder's thread.
public protocol IngressPipeline: Sendable {
    func accept(
        _ request: IngressRequest,
        completion: @escaping @Sendable (Result<Acceptance, IngressRejection>) -> Void
    ) throws(IngressRejection) -> IngressAdmission
}
