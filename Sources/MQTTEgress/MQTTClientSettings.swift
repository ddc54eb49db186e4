import GatewayCore

/// Everything the MQTT client needs, copied out of the configuration.
public struct MQTTClientSettings: Sendable {
    public var host: String
    public var port: Int
    public var clientID: String
    public var keepAlive: Int
    public var tls: TLSFiles
    /// libmosquitto's own in-flight limit; set to the forwarder's window so
    /// the library never queues more than the window.
    public var maxInflight: Int
    /// When to reconnect after a failure.
    public var backoff = ReconnectBackoff()
    /// Seconds an attempt may take from TCP connect to CONNACK.
    public var connectTimeout: Double = 30

    public init(host: String, port: Int, clientID: String, keepAlive: Int, tls: TLSFiles, maxInflight: Int) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.keepAlive = keepAlive
        self.tls = tls
        self.maxInflight = maxInflight
    }

    public init(_ upstream: UpstreamSettings) {
        self.init(
            host: upstream.host, port: upstream.port, clientID: upstream.clientID,
            keepAlive: upstream.keepAlive, tls: upstream.tls, maxInflight: upstream.maxInflight
        )
    }
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
