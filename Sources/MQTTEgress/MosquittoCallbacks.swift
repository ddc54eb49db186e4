import CMosquitto
import Foundation
import GatewayCore
import Logging

/// Receives libmosquitto's callbacks on its network thread and hands each
/// event to the sink without doing any work there.
///
/// `@unchecked Sendable`: `sink` and the connection flags are guarded by
/// `lock`; the logger is immutable.
final class MosquittoCallbacks: @unchecked Sendable {
    private let logger: Logger
    private let lock = NSLock()
    private var sink: (@Sendable (UpstreamEvent) -> Void)?
    private var downlink: (@Sendable (DownlinkEvent) -> Void)?
    private var connected = false
    private var lossReported = false
    private var connectPending = false
    /// The broker refused the current attempt's CONNACK; the network loop
    /// reports the attempt's failure (once) as `refused`.
    private var connackRefused = false

    /// Whether the broker has accepted the current connection.
    var isConnected: Bool { lock.withLock { connected } }

    /// Whether the end of the current attempt was already reported through
    /// `disconnected(code:)`.
    var reportedLoss: Bool { lock.withLock { lossReported } }

    /// Tells the forwarder about a new connection, once `mosquitto_loop` has
    /// returned: libmosquitto requeues the messages that were in flight right
    /// after the CONNACK callback, and they must go out before anything new.
    func flushConnected() {
        let pending = lock.withLock { () -> Bool in
            defer { connectPending = false }
            return connectPending && connected
        }
        if pending { emit(.connected) }
    }

    /// The network loop saw the socket fail; make sure the forwarder hears of it once.
    func markDisconnected() {
        let wasConnected = lock.withLock { () -> Bool in
            defer { connected = false; lossReported = false }
            return connected && !lossReported
        }
        if wasConnected {
            emit(.disconnected(reason: "connection lost"))
            emitDownlink(DownlinkEvent.disconnected)
        }
    }

    init(logger: Logger) {
        self.logger = logger
    }

    static func from(_ context: UnsafeMutableRawPointer?) -> MosquittoCallbacks? {
        context.map { Unmanaged<MosquittoCallbacks>.fromOpaque($0).takeUnretainedValue() }
    }

    func setSink(_ sink: (@Sendable (UpstreamEvent) -> Void)?) {
        lock.withLock { self.sink = sink }
    }

    private func emit(_ event: UpstreamEvent) {
        let sink = lock.withLock { self.sink }
        sink?(event)
    }

    func setDownlink(_ handler: (@Sendable (DownlinkEvent) -> Void)?) {
        lock.withLock { downlink = handler }
    }

    private func emitDownlink(_ event: DownlinkEvent) {
        let handler = lock.withLock { downlink }
        handler?(event)
    }

    /// A PUBLISH from the broker: its topic and payload copied out of
    /// libmosquitto's buffers, which are freed when the callback returns.
    func received(topic: UnsafePointer<CChar>?, payload: UnsafeRawPointer?, length: Int32, retained: Bool) {
        guard let topic else { return }
        let bytes = payload.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(max(0, length)))) } ?? []
        emitDownlink(DownlinkEvent.message(topic: String(cString: topic), payload: bytes, retained: retained))
    }

    func subscribed(messageID: Int32, count: Int32, granted: UnsafePointer<Int32>?) {
        let codes = granted.map { Array(UnsafeBufferPointer(start: $0, count: Int(max(0, count)))) } ?? []
        emitDownlink(DownlinkEvent.subscribed(messageID: messageID, granted: codes))
    }

    func connected(code: Int32, v5: Bool) {
        if code == 0 {
            lock.withLock {
                connected = true
                lossReported = false
                connackRefused = false
                connectPending = true
            }
            logger.info("upstream connected")
            emitDownlink(DownlinkEvent.connected)
        } else {
            lock.withLock { connackRefused = true }
            logger.warning("upstream refused the connection", metadata: [
                "mqtt.connack": "\(code)",
                "reason": "\(v5 ? MosquittoLibrary.describeReason(code) : MosquittoLibrary.describeConnack(code))",
            ])
        }
    }

    /// Whether the attempt that just ended was refused by CONNACK; clears it.
    func takeConnackRefusal() -> Bool {
        lock.withLock {
            defer { connackRefused = false }
            return connackRefused
        }
    }

    /// An attempt to connect failed: the forwarder counts it.
    func connectFailed(_ failure: UpstreamConnectFailure) {
        emit(.connectFailed(failure))
    }

    func disconnected(code: Int32, v5: Bool) {
        let wasConnected = lock.withLock { () -> Bool in
            let was = connected
            connected = false
            lossReported = was
            return was
        }
        // A failed attempt (never connected) is logged by the network loop.
        guard wasConnected else { return }
        emitDownlink(DownlinkEvent.disconnected)
        // Under MQTT 5 a broker's DISCONNECT carries a reason code (e.g. 0x97
        // quota exceeded); otherwise the code is libmosquitto's error.
        let reason = code == 0 ? "disconnected by the gateway"
            : v5 && code >= 0x80 ? "broker: \(MosquittoLibrary.describeReason(code)) (0x\(String(code, radix: 16)))"
            // libmosquitto 2.0.11 has no text for its keep-alive code ("Unknown error.").
            : code == MOSQ_ERR_KEEPALIVE.rawValue ? "no answer from the broker (not even to PINGREQ) within the keep-alive"
            : MosquittoLibrary.describe(code)
        if code == 0 {
            logger.info("upstream disconnected")
        } else {
            logger.warning("upstream connection lost", metadata: ["reason": "\(reason)"])
        }
        emit(.disconnected(reason: reason))
    }

    func published(messageID: Int32, reasonCode: Int32) {
        guard reasonCode >= 0x80 else {
            emit(.published(messageID: messageID))
            return
        }
        let reason = MosquittoLibrary.describeReason(reasonCode)
        emit(.refused(messageID: messageID, reasonCode: Int(reasonCode), reason: reason, transient: Self.isTransient(reasonCode)))
    }

    /// Reason codes that say "not now" rather than "never": quota exceeded,
    /// server busy, unspecified and implementation-specific errors, a packet
    /// identifier clash.
    static func isTransient(_ code: Int32) -> Bool {
        [0x80, 0x83, 0x89, 0x91, 0x97].contains(code)
    }

    func log(level: Int32, text: UnsafePointer<CChar>?) {
        guard let text else { return }
        let swiftLevel: Logger.Level
        switch level {
        case MOSQ_LOG_ERR: swiftLevel = .warning
        case MOSQ_LOG_WARNING: swiftLevel = .notice
        default: swiftLevel = .trace
        }
        guard logger.logLevel <= swiftLevel else { return }
        logger.log(level: swiftLevel, "libmosquitto", metadata: ["mqtt.log": "\(String(cString: text))"])
    }
}
