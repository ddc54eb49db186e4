/// What a `commands:` mapping binds its resource to: the MQTT topic filter
/// an application publishes a device's commands on. The gateway subscribes
/// to it, for that device, while the device listens (CoAP Observe, HTTP
/// long-poll) and for as long after as its subscription is kept, holding
/// what arrives meanwhile for the device's next visit.
public struct CommandBinding: Sendable, Equatable {
    /// How a command reaches the device.
    public enum Format: String, Sendable, CaseIterable {
        /// The MQTT payload exactly as published (over HTTP, `Command-Topic`
        /// names its topic, whatever the format).
        case raw
        /// `{"topic": …, "payload": …}`, so a CoAP device learns the topic too.
        case envelope
    }

    /// The filter as written, e.g. `cmd/{device}/#`: `+` and `#` stand alone
    /// in their level, `#` only last.
    public var topic: TopicTemplate
    /// Commands kept per device while it does not listen; 0: none.
    public var keep: Int
    /// Seconds a kept command stays deliverable.
    public var expiry: Double
    public var format: Format

    public init(topic: TopicTemplate, keep: Int = 10, expiry: Double = 3600, format: Format = .raw) {
        self.topic = topic
        self.keep = keep
        self.expiry = expiry
        self.format = format
    }

    /// Methods a command mapping may list: GET, to read or follow.
    public static let methods: [RequestMethod] = [.get]
}

/// One device's commands under one mapping: the rendered filter, and how
/// what arrives on it is kept. Named by the filter, which the rendering
/// makes unique per device.
public struct Mailbox: Sendable, Hashable {
    public var filter: String
    public var keep: Int
    public var expiry: Double
    public var format: CommandBinding.Format

    public init(filter: String, keep: Int, expiry: Double, format: CommandBinding.Format) {
        self.filter = filter
        self.keep = keep
        self.expiry = expiry
        self.format = format
    }

    public init(filter: String, binding: CommandBinding) {
        self.init(filter: filter, keep: binding.keep, expiry: binding.expiry, format: binding.format)
    }
}

/// A command as it arrived from the broker.
public struct DeviceCommand: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    /// Seconds since 1970, when the gateway received it.
    public var receivedAt: Double

    public init(topic: String, payload: [UInt8], receivedAt: Double) {
        self.topic = topic
        self.payload = payload
        self.receivedAt = receivedAt
    }
}
