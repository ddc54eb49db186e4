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
///
/// Its fields live in one shared, immutable box: a request copies its rule
/// into the match and the route, and a struct of some twenty references
/// retained and released every one of them at each copy (about 3 % of the
/// CoAP thread under load).
public struct MappingRule: Sendable, Equatable {
    struct Fields: Sendable, Equatable {
        var name: String
        var resource: ResourcePattern
        var methods: [RequestMethod]
        var protocols: Set<IngressProtocol>
        var topic: TopicTemplate
        var qos: QoS
        var retain: Bool
        var payload: PayloadFormat
        var expiry: Double?
        var ack: AckMode
        var ackTimeout: Double
        var shardKey: TopicTemplate?
        var auth: MappingAuth
        var identity: String?
        var allow: [String]
        var batch: Bool
        var accept: [String]
        var link: LinkAttributes
        var shadow: ShadowBinding?
        var commands: CommandBinding?
        var location: SourceLocation
    }

    /// `let` fields only: shared between threads without a lock.
    private final class Box: Sendable {
        let fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    public var name: String { box.fields.name }
    public var resource: ResourcePattern { box.fields.resource }
    public var methods: [RequestMethod] { box.fields.methods }
    public var protocols: Set<IngressProtocol> { box.fields.protocols }
    public var topic: TopicTemplate { box.fields.topic }
    public var qos: QoS { box.fields.qos }
    public var retain: Bool { box.fields.retain }
    public var payload: PayloadFormat { box.fields.payload }
    /// Messages older than this (seconds since receipt) are dropped unsent.
    public var expiry: Double? { box.fields.expiry }
    public var ack: AckMode { box.fields.ack }
    /// Seconds an `ack: delivered` answer waits for the broker.
    public var ackTimeout: Double { box.fields.ackTimeout }
    /// What decides which upstream connection carries a message; messages
    /// with the same key keep their order. Nil: the topic.
    public var shardKey: TopicTemplate? { box.fields.shardKey }
    /// Who may use it.
    public var auth: MappingAuth { box.fields.auth }
    /// A path variable that must equal the authenticated device's id.
    public var identity: String? { box.fields.identity }
    /// Device ids and groups allowed to use it; empty: every device.
    public var allow: [String] { box.fields.allow }
    /// One message per element of the body (a JSON array, NDJSON lines, or
    /// a SenML pack's records), all committed together or none.
    public var batch: Bool { box.fields.batch }
    /// Media types (bases, lowercased) a request may declare; empty: any.
    /// Others get 4.15 / 415.
    public var accept: [String] { box.fields.accept }
    /// What `/.well-known/core` says of the resource.
    public var link: LinkAttributes { box.fields.link }
    /// Set for a request/response mapping to a Device Shadow; `topic` is
    /// then the shadow's update topic.
    public var shadow: ShadowBinding? { box.fields.shadow }
    /// Set for a mapping that delivers MQTT commands to devices; `topic` is
    /// then the topic filter, wildcards and all.
    public var commands: CommandBinding? { box.fields.commands }
    /// Where the entry is written, for diagnostics.
    public var location: SourceLocation {
        get { box.fields.location }
        set {
            var fields = box.fields
            fields.location = newValue
            box = Box(fields)
        }
    }

    public static func == (lhs: MappingRule, rhs: MappingRule) -> Bool {
        lhs.box === rhs.box || lhs.box.fields == rhs.box.fields
    }

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
        box = Box(Fields(
            name: name, resource: resource, methods: methods, protocols: protocols, topic: topic, qos: qos, retain: retain, payload: payload, expiry: expiry, ack: ack, ackTimeout: ackTimeout, shardKey: shardKey, auth: auth, identity: identity, allow: allow, batch: batch, accept: accept, link: link, shadow: shadow, commands: commands, location: location
        ))
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
