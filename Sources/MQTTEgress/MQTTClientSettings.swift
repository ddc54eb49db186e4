import GatewayCore

/// Everything the MQTT client needs: the configured upstream plus the
/// reconnect policy.
public struct MQTTClientSettings: Sendable {
    public var upstream: UpstreamSettings
    /// Which of `upstream.connections` this is (0-based); it picks the client ID.
    public var connection: Int
    /// When to reconnect after a failure.
    public var backoff = ReconnectBackoff()
    /// Seconds an attempt may take from TCP connect to CONNACK.
    public var connectTimeout: Double = 30

    public init(_ upstream: UpstreamSettings, connection: Int = 0) {
        self.upstream = upstream
        self.connection = connection
    }

    var host: String { upstream.host }
    var port: Int { upstream.port }
    var clientID: String { upstream.clientID(connection: connection) }
    var keepAlive: Int { upstream.keepAlive }
    var tls: TLSFiles { upstream.tls }
    /// libmosquitto's own in-flight limit: the window on the wire. The
    /// forwarder hands it up to twice this; the library queues the rest and
    /// sends the next at each PUBACK.
    var maxInflight: Int { upstream.maxInflight }
    /// The gateway's status topic, on connection 0 only: one connection
    /// speaks for the gateway, so a second one's drop cannot say `offline`.
    var statusTopic: String? { connection == 0 ? upstream.statusTopic : nil }
}

/// The payloads of the status topic.
enum GatewayStatus {
    static let online = "online"
    static let offline = "offline"
}

/// Why the client could not be set up. Connection failures are not errors:
/// the client keeps retrying and reports them as events.
public enum MQTTSetupError: Error, Sendable, CustomStringConvertible {
    case library
    case create(reason: String)
    case tls(reason: String)
    case option(name: String, reason: String)

    public var description: String {
        switch self {
        case .library: return "libmosquitto could not be initialised"
        case .create(let reason): return "cannot create MQTT client: \(reason)"
        case .tls(let reason): return "TLS setup failed: \(reason)"
        case .option(let name, let reason): return "MQTT option \(name): \(reason)"
        }
    }
}
