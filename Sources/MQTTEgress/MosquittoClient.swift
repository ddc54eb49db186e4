import CMosquitto
import Foundation
import GatewayCore
import Logging

/// The upstream MQTT connection, on libmosquitto: MQTT 3.1.1, mutual TLS (TLS
/// 1.2 or newer, peer and host name verified, SNI set to the host), a
/// persistent session (`clean_session` false), and a network thread of our
/// own (`NetworkLoop`) that reconnects with jittered exponential backoff.
///
/// `@unchecked Sendable`: `handle` never changes after `init`, and libmosquitto
/// is built with threading, so `mosquitto_publish` and `mosquitto_disconnect`
/// may be called from any thread while its network thread runs; the library
/// takes its own locks.
public final class MosquittoClient: DownlinkTransport, @unchecked Sendable {
    private let handle: OpaquePointer
    private let callbacks: MosquittoCallbacks
    private let settings: MQTTClientSettings
    private let logger: Logger
    private let network: NetworkLoop

    public init(settings: MQTTClientSettings, logger: Logger) throws(MQTTSetupError) {
        guard MosquittoLibrary.ensureInitialized() else { throw .library }
        self.settings = settings
        self.logger = logger
        self.callbacks = MosquittoCallbacks(logger: logger)
        // The callbacks object outlives the handle: it is owned by self and the
        // handle is destroyed in deinit, so passing it unretained is safe.
        let context = Unmanaged.passUnretained(callbacks).toOpaque()
        guard let handle = mosquitto_new(settings.clientID, false, context) else {
            throw .create(reason: String(cString: strerror(errno)))
        }
        self.handle = handle
        self.network = NetworkLoop(handle: handle, settings: settings, callbacks: callbacks, logger: logger)
        do {
            try configure()
        } catch {
            mosquitto_destroy(handle)
            throw error
        }
    }

    deinit {
        mosquitto_destroy(handle)
    }

    private func configure() throws(MQTTSetupError) {
        let v5 = settings.upstream.protocolVersion == .mqtt5
        try check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311), "protocol_version")
        try check(mosquitto_max_inflight_messages_set(handle, UInt32(settings.maxInflight)), "max_inflight")
        // Each publish leaves at once: with Nagle's algorithm a small PUBLISH
        // behind an unacknowledged one waits for the broker's (delayed) ACK,
        // up to 40 ms on Linux.
        try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "tcp_nodelay")
        // Our own thread runs mosquitto_loop; this makes mosquitto_publish from
        // the forwarder's thread wake it instead of writing inline.
        try check(mosquitto_threaded_set(handle, true), "threaded")
        let tls = mosquitto_tls_set(handle, settings.tls.caFile, nil, settings.tls.certFile, settings.tls.keyFile, nil)
        guard tls == MOSQ_ERR_SUCCESS.rawValue else {
            throw .tls(reason: MosquittoLibrary.describe(tls))
        }
        // SSL_VERIFY_PEER; "tlsv1.2" refuses TLS 1.0/1.1 and allows 1.3.
        let options = mosquitto_tls_opts_set(handle, 1, "tlsv1.2", nil)
        guard options == MOSQ_ERR_SUCCESS.rawValue else {
            throw .tls(reason: MosquittoLibrary.describe(options))
        }
        if let alpn = settings.tls.alpn {
            try check(mosquitto_string_option(handle, MOSQ_OPT_TLS_ALPN, alpn), "tls_alpn")
        }
        if let topic = settings.statusTopic {
            // The broker publishes this when the connection dies without a
            // DISCONNECT (a crash, a power cut, a dead link).
            let payload = Array(GatewayStatus.offline.utf8)
            let code = payload.withUnsafeBytes { mosquitto_will_set(handle, topic, Int32($0.count), $0.baseAddress, 1, true) }
            try check(code, "will (status_topic)")
        }
        if let username = settings.upstream.username {
            try check(mosquitto_username_pw_set(handle, username, settings.upstream.password), "username")
        }
        if v5 {
            try storeConnectProperties()
            // The v5 callbacks carry the broker's reason codes.
            mosquitto_connect_v5_callback_set(handle) { _, context, code, _, _ in
                MosquittoCallbacks.from(context)?.connected(code: code, v5: true)
            }
            mosquitto_disconnect_v5_callback_set(handle) { _, context, code, _ in
                MosquittoCallbacks.from(context)?.disconnected(code: code, v5: true)
            }
            mosquitto_publish_v5_callback_set(handle) { _, context, messageID, reasonCode, _ in
                MosquittoCallbacks.from(context)?.published(messageID: messageID, reasonCode: reasonCode)
            }
        } else {
            mosquitto_connect_callback_set(handle) { _, context, code in
                MosquittoCallbacks.from(context)?.connected(code: code, v5: false)
            }
            mosquitto_disconnect_callback_set(handle) { _, context, code in
                MosquittoCallbacks.from(context)?.disconnected(code: code, v5: false)
            }
            mosquitto_publish_callback_set(handle) { _, context, messageID in
                MosquittoCallbacks.from(context)?.published(messageID: messageID, reasonCode: 0)
            }
        }
        mosquitto_message_callback_set(handle) { _, context, message in
            guard let message else { return }
            MosquittoCallbacks.from(context)?.received(
                topic: message.pointee.topic, payload: UnsafeRawPointer(message.pointee.payload), length: message.pointee.payloadlen,
                retained: message.pointee.retain
            )
        }
        mosquitto_subscribe_callback_set(handle) { _, context, messageID, count, granted in
            MosquittoCallbacks.from(context)?.subscribed(messageID: messageID, count: count, granted: granted)
        }
        mosquitto_log_callback_set(handle) { _, context, level, text in
            MosquittoCallbacks.from(context)?.log(level: level, text: text)
        }
    }

    /// MQTT 5 CONNECT properties (the session expiry). libmosquitto takes
    /// them only through `mosquitto_connect_bind_v5`, which would also connect,
    /// blocking; given an invalid port it stores them and returns before any
    /// network call, and the asynchronous connects that follow send them.
    private func storeConnectProperties() throws(MQTTSetupError) {
        var properties: OpaquePointer?
        defer { mosquitto_property_free_all(&properties) }
        let expiry = UInt32(clamping: Int(settings.upstream.sessionExpiry))
        try check(mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), expiry), "session_expiry")
        let code = mosquitto_connect_bind_v5(handle, settings.host, -1, Int32(settings.keepAlive), nil, properties)
        guard code == MOSQ_ERR_INVAL.rawValue else {
            throw .option(name: "session_expiry", reason: MosquittoLibrary.describe(code))
        }
    }

    private func check(_ code: Int32, _ name: String) throws(MQTTSetupError) {
        guard code == MOSQ_ERR_SUCCESS.rawValue else {
            throw .option(name: name, reason: MosquittoLibrary.describe(code))
        }
    }

    public func start(events: @escaping @Sendable (UpstreamEvent) -> Void) {
        callbacks.setSink(events)
        logger.info("connecting upstream", metadata: [
            "mqtt.host": "\(settings.host)", "mqtt.port": "\(settings.port)", "mqtt.client_id": "\(settings.clientID)",
        ])
        network.start()
    }

    public func publish(topic: String, payload: [UInt8], qos: QoS, retain: Bool, expiresIn: UInt32?) -> PublishOutcome {
        var messageID: Int32 = 0
        var properties: OpaquePointer?
        defer { mosquitto_property_free_all(&properties) }
        if let expiresIn, settings.upstream.protocolVersion == .mqtt5 {
            _ = mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL.rawValue), max(1, expiresIn))
        }
        let code = payload.withUnsafeBytes { bytes in
            mosquitto_publish_v5(handle, &messageID, topic, Int32(bytes.count), bytes.baseAddress, Int32(qos.rawValue), retain, properties)
        }
        return Self.outcome(code: code, messageID: messageID, qos: qos)
    }

    /// Interprets `mosquitto_publish`'s return. For QoS 1, libmosquitto queues
    /// the message before trying to send it, so any error after its argument
    /// checks (no connection, lost connection) still leaves it in flight: it is
    /// resent on reconnect.
    static func outcome(code: Int32, messageID: Int32, qos: QoS) -> PublishOutcome {
        switch code {
        case MOSQ_ERR_SUCCESS.rawValue:
            return .inFlight(messageID: messageID)
        case MOSQ_ERR_INVAL.rawValue, MOSQ_ERR_PAYLOAD_SIZE.rawValue, MOSQ_ERR_MALFORMED_UTF8.rawValue,
             MOSQ_ERR_QOS_NOT_SUPPORTED.rawValue, MOSQ_ERR_NOT_SUPPORTED.rawValue, MOSQ_ERR_OVERSIZE_PACKET.rawValue:
            return .rejected(reason: MosquittoLibrary.describe(code))
        case MOSQ_ERR_NOMEM.rawValue:
            return .notConnected
        default:
            return qos.isDurable && messageID != 0 ? .inFlight(messageID: messageID) : .notConnected
        }
    }

    public func listen(_ handler: @escaping @Sendable (DownlinkEvent) -> Void) {
        callbacks.setDownlink(handler)
    }

    public func subscribe(_ filter: String, qos: QoS) -> SubscribeOutcome {
        var messageID: Int32 = 0
        let code = mosquitto_subscribe(handle, &messageID, filter, Int32(qos.rawValue))
        switch code {
        case MOSQ_ERR_SUCCESS.rawValue: return .sent(messageID: messageID)
        case MOSQ_ERR_INVAL.rawValue, MOSQ_ERR_MALFORMED_UTF8.rawValue, MOSQ_ERR_OVERSIZE_PACKET.rawValue:
            return .rejected(reason: MosquittoLibrary.describe(code))
        default: return .notConnected
        }
    }

    public func unsubscribe(_ filter: String) -> Bool {
        mosquitto_unsubscribe(handle, nil, filter) == MOSQ_ERR_SUCCESS.rawValue
    }

    public func reconnect() {
        network.requestReconnect()
    }

    public func stop() {
        network.stop()
        callbacks.setSink(nil)
        callbacks.setDownlink(nil)
    }
}
