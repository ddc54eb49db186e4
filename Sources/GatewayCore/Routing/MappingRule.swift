/// How a mapping publishes the request body.
public enum PayloadFormat: String, Sendable, CaseIterable {
    /// The body bytes exactly as sent.
    case raw
    /// A JSON object describing the request, with the body inside.
    case envelope
}

/// One compiled entry of the mapping table.
public struct MappingRule: Sendable {
    public var name: String
    public var resource: ResourcePattern
    public var methods: [RequestMethod]
    public var protocols: Set<IngressProtocol>
    public var topic: TopicTemplate
    public var qos: QoS
    public var retain: Bool
    public var payload: PayloadFormat
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
        self.location = location
    }
}
