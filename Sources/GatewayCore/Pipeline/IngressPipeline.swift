/// How a request was accepted.
public enum Acceptance: Sendable, Equatable {
    /// Committed to disk (QoS 1) or queued (QoS 0): CoAP 2.04, HTTP 202.
    case stored
    /// The broker acknowledged it (`ack: delivered`): CoAP 2.04, HTTP 200.
    case delivered
    /// A batch's messages, all committed (or queued) together: CoAP 2.04,
    /// HTTP 202, each with `{"accepted":count}`.
    case storedBatch(count: Int)
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
        /// A long-poll that saw no change: HTTP 204, no body.
        case unchanged
    }

    public var kind: Kind
    public var body: [UInt8]
    /// A media type; CoAP sends the matching Content-Format. Nil: not known
    /// (a command's payload), no Content-Format; HTTP says octet-stream.
    public var contentType: String?
    /// For a command: where it came from, so one a device did not
    /// acknowledge can be kept again (`mailbox` is its filter).
    public var command: DeviceCommand?
    public var mailbox: String?

    public init(kind: Kind, body: [UInt8], contentType: String? = "application/json") {
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

    /// A device that keeps listening (CoAP Observe). Returns nil when the
    /// resource cannot be observed: the adapter then answers it as a plain
    /// request. Otherwise `events` receives `.initial` once, then
    /// `.notification`s, until `cancel` (or `.ended`, after which nothing follows).
    func observe(
        _ request: IngressRequest, events: @escaping @Sendable (ObservationEvent) -> Void
    ) throws(IngressRejection) -> ObservationID?

    /// The device stopped listening (deregistered, or stopped acknowledging:
    /// `undelivered` is a notification it did not acknowledge).
    func cancel(_ observation: ObservationID, undelivered: DeviceReply?)

    /// `/.well-known/core`: the links to the resources the request's sender
    /// may use, filtered (RFC 6690 link format).
    func discover(_ request: IngressRequest, filters: [Discovery.Filter]) -> String
}

extension IngressPipeline {
    public func observe(
        _ request: IngressRequest, events: @escaping @Sendable (ObservationEvent) -> Void
    ) throws(IngressRejection) -> ObservationID? { nil }

    public func cancel(_ observation: ObservationID, undelivered: DeviceReply?) {}

    public func discover(_ request: IngressRequest, filters: [Discovery.Filter]) -> String { "" }
}

/// Names one observation for as long as it lasts.
public struct ObservationID: Sendable, Hashable {
    public let value: UInt64
    public init(_ value: UInt64) { self.value = value }
}

/// What an observing device is sent.
public enum ObservationEvent: Sendable {
    /// The answer to the registering request.
    case initial(Result<Acceptance, IngressRejection>)
    /// A change (a shadow delta).
    case notification(DeviceReply)
    /// The gateway ends it (shutting down, the subscription refused).
    case ended(IngressRejection)
}

extension Acceptance {
    /// The body a batch's answer carries.
    public static func batchBody(count: Int) -> [UInt8] { Array("{\"accepted\":\(count)}".utf8) }
}
