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
public final class MosquittoClient: UpstreamClient, @unchecked Sendable {
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
        try check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311), "protocol_version")
        try check(mosquitto_max_inflight_messages_set(handle, UInt32(settings.maxInflight)), "max_inflight")
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
        if let username = settings.upstream.username {
            try check(mosquitto_username_pw_set(handle, username, settings.upstream.password), "username")
        }
        mosquitto_connect_callback_set(handle) { _, context, code in
            MosquittoCallbacks.from(context)?.connected(code: code)
        }
        mosquitto_disconnect_callback_set(handle) { _, context, code in
            MosquittoCallbacks.from(context)?.disconnected(code: code)
        }
        mosquitto_publish_callback_set(handle) { _, context, messageID in
            MosquittoCallbacks.from(context)?.published(messageID: messageID)
        }
        mosquitto_log_callback_set(handle) { _, context, level, text in
            MosquittoCallbacks.from(context)?.log(level: level, text: text)
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

    public func publish(topic: String, payload: [UInt8], qos: QoS, retain: Bool) -> PublishOutcome {
        var messageID: Int32 = 0
        let code = payload.withUnsafeBytes { bytes in
            mosquitto_publish(handle, &messageID, topic, Int32(bytes.count), bytes.baseAddress, Int32(qos.rawValue), retain)
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

    public func stop() {
        network.stop()
        callbacks.setSink(nil)
    }
}
