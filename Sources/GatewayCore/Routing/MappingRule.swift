/// How a mapping publishes the request body.
public enum PayloadFormat: String, Sendable, CaseIterable {
    /// The body bytes exactly as sent.
    case raw
    /// A JSON object describing the request, with the body inside.
    case envelope
    /// JSON: a JSON body as sent, a CBOR body converted to JSON.
    case json
    /// SenML (JSON or CBOR) resolved into full records, published as
    /// normalized SenML JSON: one pack, or one message per record with `batch`.
    case senml
}

/// When a device hears "accepted".
public enum AckMode: String, Sendable, CaseIterable {
    /// Once the message is committed (QoS 1) or queued (QoS 0).
    case stored
    /// Once the broker acknowledged it (PUBACK), or `ack_timeout` passed.
    case delivered
}

/// Who may use a mapping.
public enum MappingAuth: String, Sendable, CaseIterable {
    /// Only an authenticated device (DTLS or HTTPS credentials): the default.
    case device
    /// Anyone who can reach a listener, including the plain ones.
    case anonymous
}

/// One compiled entry of the mapping table.
public struct MappingRule: Sendable, Equatable {
    public var name: String
    public var resource: ResourcePattern
    public var methods: [RequestMethod]
    public var protocols: Set<IngressProtocol>
    public var topic: TopicTemplate
    public var qos: QoS
    public var retain: Bool
    public var payload: PayloadFormat
    /// Messages older than this (seconds since receipt) are dropped unsent.
    public var expiry: Double?
    public var ack: AckMode
    /// Seconds an `ack: delivered` answer waits for the broker.
    public var ackTimeout: Double
    /// What decides which upstream connection carries a message; messages
    /// with the same key keep their order. Nil: the topic.
    public var shardKey: TopicTemplate?
    /// Who may use it.
    public var auth: MappingAuth
    /// A path variable that must equal the authenticated device's id.
    public var identity: String?
    /// Device ids and groups allowed to use it; empty: every device.
    public var allow: [String]
    /// One message per element of the body (a JSON array, NDJSON lines, or
    /// a SenML pack's records), all committed together or none.
    public var batch: Bool
    /// Media types (bases, lowercased) a request may declare; empty: any.
    /// Others get 4.15 / 415.
    public var accept: [String]
    /// What `/.well-known/core` says of the resource.
    public var link: LinkAttributes
    /// Set for a request/response mapping to a Device Shadow; `topic` is
    /// then the shadow's update topic.
    public var shadow: ShadowBinding?
    /// Set for a mapping that delivers MQTT commands to devices; `topic` is
    /// then the topic filter, wildcards and all.
    public var commands: CommandBinding?
    /// Where the entry is written, for diagnostics.
    public var location: SourceLocation

    public init(
        name: String,
        resource: ResourcePattern,
        methods: [RequestMethod] = [.post, .put],
        protocols: Set<IngressProtocol> = [.coap, .http],
        topic: TopicTemplate,
        qos: QoS = .atLeastOnce,
        retain: Bool = false,
        payload: PayloadFormat = .raw,
        expiry: Double? = nil,
        ack: AckMode = .stored,
        ackTimeout: Double = 5,
        shardKey: TopicTemplate? = nil,
        batch: Bool = false,
        accept: [String] = [],
        link: LinkAttributes = LinkAttributes(),
        auth: MappingAuth = .device,
        identity: String? = nil,
        allow: [String] = [],
        shadow: ShadowBinding? = nil,
        commands: CommandBinding? = nil,
        location: SourceLocation
    ) {
        self.name = name
        self.resource = resource
        self.methods = methods
        self.protocols = protocols
        self.topic = topic
        self.qos = qos
        self.retain = retain
        self.payload = payload
        self.expiry = expiry
        self.ack = ack
        self.ackTimeout = ackTimeout
        self.shardKey = shardKey
        self.batch = batch
        self.accept = accept
        self.link = link
        self.auth = auth
        self.identity = identity
        self.allow = allow
        self.shadow = shadow
        self.commands = commands
        self.location = location
    }
}

/// RFC 6690 target attributes a mapping's resource is listed with.
public struct LinkAttributes: Sendable, Equatable {
    /// Resource types (`rt`).
    public var resourceTypes: [String]
    /// Interface descriptions (`if`).
    public var interfaces: [String]
    /// Content-Format numbers (`ct`).
    public var contentFormats: [UInt32]

    public init(resourceTypes: [String] = [], interfaces: [String] = [], contentFormats: [UInt32] = []) {
        self.resourceTypes = resourceTypes
        self.interfaces = interfaces
        self.contentFormats = contentFormats
    }
}
