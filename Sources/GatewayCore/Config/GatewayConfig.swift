/// The whole configuration, typed and validated. Paths are absolute.
public struct GatewayConfig: Sendable {
    /// The file it was loaded from.
    public var file: String
    public var gateway: GatewaySettings
    public var upstream: UpstreamSettings
    public var coap: CoAPSettings
    public var http: HTTPSettings
    public var outbox: OutboxSettings
    public var admin: AdminSettings
    public var log: LogSettings
    /// Where the device registry lives, and the failure lockout.
    public var devices: DeviceSettings = DeviceSettings()
    /// The registry as loaded with the configuration (a reload replaces it
    /// in the running gateway, not here).
    public var registry: DeviceRegistry = .empty
    /// Inline mappings first, then those of each mapping file in sorted order.
    public var mappings: [MappingRule]
    /// Things that are allowed but probably not what was meant, or that the
    /// gateway adjusted (e.g. a keep-alive clamped to AWS's range).
    public var warnings: [ConfigIssue] = []
}

public struct GatewaySettings: Sendable, Equatable {
    /// `[A-Za-z0-9:_-]`, 1...128; the default client ID and `{gateway}` in topics.
    public var name: String
    /// Holds the outbox database.
    public var stateDirectory: String

    public init(name: String, stateDirectory: String) {
        self.name = name
        self.stateDirectory = stateDirectory
    }
}

public struct UpstreamSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var clientID: String
    /// MQTT keep-alive in seconds.
    public var keepAlive: Int
    public var tls: TLSFiles
    /// How many QoS 1 publishes may await their PUBACK at once, per connection.
    public var maxInflight: Int
    public var profile: UpstreamProfile = .awsIotCore
    public var protocolVersion: MQTTVersion = .mqtt311
    /// MQTT 5 session expiry in seconds.
    public var sessionExpiry: Double = 3600
    /// Publishes per second per connection; nil: unlimited.
    public var publishRate: Double? = 100
    /// Payload and topic bytes per second per connection; nil: unlimited.
    public var byteRate: Int? = 512 * 1024
    /// Parallel MQTT connections, messages sharded across them by key.
    public var connections: Int = 1
    public var username: String?
    /// The password, read from `password_file` when the configuration loads.
    public var password: String?
    /// Where connection 0 says `online` (retained, at each connect) and
    /// where the broker says `offline` for it (its will) when the gateway
    /// goes away; nil: no status messages.
    public var statusTopic: String?
    /// Topic filters each connection subscribes to at most, for downlink
    /// (shadow answers); the least recently used idle one makes room.
    public var maxSubscriptions: Int = 40

    /// The client ID of connection `index` (0-based): the configured ID when
    /// there is one connection, `<id>-1 ... <id>-N` otherwise.
    public func clientID(connection index: Int) -> String {
        connections == 1 ? clientID : "\(clientID)-\(index + 1)"
    }

    public var limits: UpstreamLimits { .forProfile(profile) }

    public init(host: String, port: Int, clientID: String, keepAlive: Int, tls: TLSFiles, maxInflight: Int) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.keepAlive = keepAlive
        self.tls = tls
        self.maxInflight = maxInflight
    }
}

public struct TLSFiles: Sendable, Equatable {
    public var caFile: String
    public var certFile: String
    public var keyFile: String
    /// ALPN protocol offered in the TLS handshake; nil: none.
    public var alpn: String?

    public init(caFile: String, certFile: String, keyFile: String, alpn: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.alpn = alpn
    }
}

public struct CoAPSettings: Sendable, Equatable {
    /// Plain CoAP (UDP): no credentials, so only `auth: anonymous` mappings answer.
    public var listen: [ListenAddress]
    /// Largest request body, reassembled from Block1 transfers if needed.
    public var maxBody: Int
    /// CoAP over DTLS; no listen address turns it off.
    public var dtls: DTLSSettings = DTLSSettings()
    /// How often a confirmable notification to an observer is resent
    /// (RFC 7252's MAX_RETRANSMIT, 4) before the observer counts as gone and
    /// is removed (RFC 7641 section 4.5); it applies to the observer's session.
    public var notifyRetransmits: Int = 4

    public init(listen: [ListenAddress], maxBody: Int) {
        self.listen = listen
        self.maxBody = maxBody
    }

    /// Plain and DTLS listeners together, for checks that span both.
    public var allListeners: [ListenAddress] { listen + dtls.listen }
}

/// CoAP over DTLS (RFC 7252 section 9): devices authenticate with a
/// pre-shared key (identity = device id) or a certificate under the device CA.
public struct DTLSSettings: Sendable, Equatable {
    public var listen: [ListenAddress] = []
    /// The gateway's own certificate and key, which X.509 devices need; a
    /// PSK-only deployment can go without.
    public var certFile: String?
    public var keyFile: String?
    /// CA of the device certificates (`devices.ca_file`); nil: PSK only.
    public var caFile: String?
    /// DTLS handshakes in progress at most; more ClientHellos are ignored
    /// until one finishes or is given up (libcoap drops an incomplete
    /// handshake after 30 s).
    public var maxHandshakes: Int = 64
    /// Idle sessions kept at most (the least recently used goes first).
    public var maxSessions: Int = 2048
    /// Seconds an idle session is kept.
    public var idleTimeout: Int = 300

    public init() {}
}

public struct HTTPSettings: Sendable, Equatable {
    public var listen: [ListenAddress]
    public var maxBody: Int
    public var maxConnections: Int
    public var maxConnectionsPerIP: Int
    /// Seconds an idle connection is kept open.
    public var idleTimeout: Int
    /// libmicrohttpd worker threads (each runs its own epoll loop).
    public var threads: Int
    /// HTTPS; nil: off.
    public var tls: HTTPTLSSettings?

    public init(listen: [ListenAddress], maxBody: Int, maxConnections: Int, maxConnectionsPerIP: Int, idleTimeout: Int, threads: Int) {
        self.listen = listen
        self.maxBody = maxBody
        self.maxConnections = maxConnections
        self.maxConnectionsPerIP = maxConnectionsPerIP
        self.idleTimeout = idleTimeout
        self.threads = threads
    }
}

/// HTTPS through libmicrohttpd (GnuTLS): devices authenticate with a bearer
/// token, Basic id:token, or a client certificate under the device CA.
public struct HTTPTLSSettings: Sendable, Equatable {
    public var listen: [ListenAddress]
    public var certFile: String
    public var keyFile: String
    /// CA of device certificates (`devices.ca_file`); nil: no client certificates.
    public var caFile: String?

    public init(listen: [ListenAddress], certFile: String, keyFile: String, caFile: String? = nil) {
        self.listen = listen
        self.certFile = certFile
        self.keyFile = keyFile
        self.caFile = caFile
    }
}

public enum SyncMode: String, Sendable, CaseIterable {
    /// fsync on every commit: an acknowledged message survives power loss.
    case full
    /// fsync at checkpoints only: survives a crash of the process, not of the machine.
    case normal
}

/// What happens to QoS 0 messages while the upstream connection is down.
public enum OfflineQoS0: String, Sendable, CaseIterable {
    /// Dropped at once (and counted), as AWS's own edge spooler does by default.
    case drop
    /// Kept in memory, within the QoS 0 bounds, and sent after reconnecting.
    case keep
}

public struct OutboxSettings: Sendable, Equatable {
    public var maxMessages: Int
    public var maxBytes: Int
    public var sync: SyncMode
    public var qos0WhenOffline: OfflineQoS0 = .drop
    /// Bounds of the in-memory QoS 0 queue; the oldest is shed past them.
    public var qos0MaxMessages: Int = 10_000
    public var qos0MaxBytes: Int = 8 << 20
    /// Deletions of delivered rows wait for the next insert to share its
    /// commit; on their own they are committed once this many wait or
    /// `settleLinger` passed. A PUBACK frees its window slot at once; the
    /// forwarder caps the deletions it still owes (see `ForwarderMachine`),
    /// so keep this well below that cap.
    public var settleBatch: Int = 128
    public var settleLinger: Double = 0.002

    public init(maxMessages: Int, maxBytes: Int, sync: SyncMode) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.sync = sync
    }
}

public struct AdminSettings: Sendable, Equatable {
    /// Where `/healthz`, `/readyz` and `/metrics` are served; empty: nowhere.
    public var listen: [ListenAddress]

    public init(listen: [ListenAddress]) {
        self.listen = listen
    }
}

public enum LogLevel: String, Sendable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

public struct LogSettings: Sendable, Equatable {
    public var level: LogLevel

    public init(level: LogLevel) {
        self.level = level
    }
}

/// A `host:port` to listen on; the host is an IP literal.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var isIPv6: Bool { host.contains(":") }

    /// 127.0.0.0/8 or ::1: reachable from this machine only.
    public var isLoopback: Bool { host.hasPrefix("127.") || host == "::1" }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `0.0.0.0:5683`, `127.0.0.1:8080`, `[::]:5683`, `[::1]:8080`.
    public static func parse(_ text: String) -> ListenAddress? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
            guard IPAddressText.isIPv6(String(host)) else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard IPAddressText.isIPv4(String(host)) else { return nil }
        }
        guard let port = UInt16(portText) else { return nil }
        return ListenAddress(host: String(host), port: port)
    }
}
