import CMosquitto
import Foundation
import GatewayCore
import Logging

/// The MQTT network thread: connects, runs `mosquitto_loop`, and reconnects
/// with `ReconnectBackoff` (full jitter, at most one CONNECT per second).
///
/// libmosquitto has its own thread (`mosquitto_loop_start`), but its backoff
/// has no jitter, it gives up on TLS errors, and stopping it while it waits to
/// reconnect can block for the whole delay. Connects are asynchronous (TCP and
/// TLS progress inside `mosquitto_loop`), so `stop()` is never stuck behind an
/// unreachable broker for longer than one loop timeout.
///
/// `@unchecked Sendable`: `handle` is used by the loop thread for
/// connect/loop/disconnect and by other threads only for the calls
/// libmosquitto makes thread-safe (publish); `control` is `Guarded`.
final class NetworkLoop: @unchecked Sendable {
    struct Control: Sendable {
        var stopRequested = false
        /// The forwarder found the connection stalled: drop it.
        var reconnectRequested = false
    }

    private let handle: OpaquePointer
    private let settings: MQTTClientSettings
    private let callbacks: MosquittoCallbacks
    private let logger: Logger
    private let control = Guarded(Control())
    private let thread = WorkerThread(name: "mqtt")

    /// How long one `mosquitto_loop` call may wait for I/O, in milliseconds.
    static let loopTimeout: Int32 = 250

    /// The TLS write buffer (see `iotgw_mosq_buffer_writes`): about a
    /// window of 100 short readings (one PUBLISH in its TLS record is some
    /// 150–200 bytes); when it fills, it is sent and filling starts again.
    static let writeBuffer: Int32 = 16 * 1024

    init(handle: OpaquePointer, settings: MQTTClientSettings, callbacks: MosquittoCallbacks, logger: Logger) {
        self.handle = handle
        self.settings = settings
        self.callbacks = callbacks
        self.logger = logger
    }

    func start() {
        thread.start { [self] in run() }
    }

    /// Disconnects cleanly if connected and waits for the thread to end.
    func stop() {
        thread.stop { control.update { $0.stopRequested = true } }
    }

    private var stopRequested: Bool { control.withLock { $0.stopRequested } }

    /// Drops the current connection at the next turn of the loop; the
    /// reconnect follows with the backoff.
    func requestReconnect() {
        control.update { $0.reconnectRequested = true }
    }

    private func run() {
        var backoff = settings.backoff
        var first = true
        var socketOpen = false
        var attemptStarted = 0.0
        /// How far the current attempt got (see `iotgw_mosq_connect_stage`).
        var stage: Int32 = 0
        var wasConnected = false
        var writesPending = false

        while !stopRequested {
            thread.beat()
            if !socketOpen {
                if !first {
                    let delay = backoff.nextDelay()
                    logger.debug("upstream reconnect scheduled", metadata: ["mqtt.retry_in": "\(String(format: "%.1f", delay))s"])
                    let stopping = thread.idle { control.wait(until: { $0.stopRequested }, deadline: .after(delay)) { $0.stopRequested } }
                    if stopping { break }
                }
                let code = first
                    ? mosquitto_connect_async(handle, settings.host, Int32(settings.port), Int32(settings.keepAlive))
                    : mosquitto_reconnect_async(handle)
                first = false
                attemptStarted = MonotonicClock.now()
                stage = 0
                if code > 0 {
                    attemptFailed(code)
                    continue
                }
                socketOpen = true
            }

            if control.withLock({ state in defer { state.reconnectRequested = false }; return state.reconnectRequested }) {
                // The broker may not read any more: no clean DISCONNECT, the
                // next attempt closes the socket.
                socketOpen = false
                writesPending = false
                callbacks.markDisconnected()
                continue
            }

            if !callbacks.isConnected, let reason = failedConnect() {
                // libmosquitto 2.0.11 does not notice a refused asynchronous
                // connect under TLS: its loop would spin on the readable socket.
                attemptFailed(reason: reason, failure: .network)
                socketOpen = false
                continue
            }

            if writesPending {
                // The last flush would have blocked: wait until the socket
                // takes more (or the broker has something for us).
                var entry = pollfd(fd: mosquitto_socket(handle), events: Int16(POLLOUT | POLLIN), revents: 0)
                _ = poll(&entry, 1, Self.loopTimeout)
                writesPending = iotgw_mosq_flush_writes(handle) == 0
            }
            var code = mosquitto_loop(handle, Self.loopTimeout, 1)
            // Read-ahead may have left whole packets in OpenSSL's buffer,
            // where select() does not see them (a PINGRESP left there would
            // end the connection at the next keep-alive check). Once per
            // turn: a partial record stays there until its rest arrives.
            if code == MOSQ_ERR_SUCCESS.rawValue && iotgw_mosq_unread_records(handle) != 0 {
                code = mosquitto_loop_read(handle, 1)
            }
            // What this call wrote leaves in one send().
            if code == MOSQ_ERR_SUCCESS.rawValue { writesPending = iotgw_mosq_flush_writes(handle) == 0 }
            callbacks.flushConnected()
            let connected = callbacks.isConnected
            if !connected && stage < 2 { stage = max(stage, iotgw_mosq_connect_stage(handle)) }
            if connected && iotgw_mosq_buffer_writes(handle, Self.writeBuffer) < 0 {
                logger.debug("could not buffer TLS writes; sending each packet on its own")
            }
            if connected && !wasConnected {
                backoff.didConnect(at: MonotonicClock.now())
                publishStatus(GatewayStatus.online)
            }
            if !connected && wasConnected { backoff.didDisconnect(at: MonotonicClock.now()) }
            wasConnected = connected

            if code != MOSQ_ERR_SUCCESS.rawValue {
                socketOpen = false
                writesPending = false
                if !connected && !callbacks.reportedLoss {
                    // libmosquitto ends an attempt with no CONNACK after
                    // keep_alive seconds as "Unknown error." (its code 19):
                    // say what stalled instead.
                    if code == MOSQ_ERR_KEEPALIVE.rawValue {
                        attemptFailed(reason: Self.stalled(stage: stage, after: settings.keepAlive), failure: .timeout)
                    } else {
                        attemptFailed(code)
                    }
                }
                callbacks.markDisconnected()
            } else if !connected && MonotonicClock.now() - attemptStarted > settings.connectTimeout {
                logger.warning("upstream connect attempt timed out", metadata: [
                    "mqtt.host": "\(settings.host)", "mqtt.port": "\(settings.port)",
                    "reason": "\(Self.stalled(stage: stage, after: Int(settings.connectTimeout)))",
                ])
                callbacks.connectFailed(.timeout)
                // The next reconnect closes the half-open socket.
                socketOpen = false
            }
        }

        if callbacks.isConnected {
            // A clean DISCONNECT discards the will: say `offline` first.
            publishStatus(GatewayStatus.offline)
            mosquitto_disconnect(handle)
            let deadline = MonotonicClock.now() + 1
            while callbacks.isConnected && MonotonicClock.now() < deadline {
                if mosquitto_loop(handle, 100, 1) != MOSQ_ERR_SUCCESS.rawValue { break }
                _ = iotgw_mosq_flush_writes(handle)
            }
        }
    }

    /// Retained, QoS 1, on connection 0's status topic; its PUBACK is an ID
    /// the forwarder never issued, which it ignores.
    private func publishStatus(_ state: String) {
        guard let topic = settings.statusTopic else { return }
        let payload = Array(state.utf8)
        let code = payload.withUnsafeBytes { mosquitto_publish(handle, nil, topic, Int32($0.count), $0.baseAddress, 1, true) }
        if code != MOSQ_ERR_SUCCESS.rawValue {
            logger.warning("gateway status not published", metadata: [
                "mqtt.topic": "\(topic)", "status": "\(state)", "reason": "\(MosquittoLibrary.describe(code))",
            ])
        }
    }

    /// What a timed-out attempt was waiting for, from how far it got.
    static func stalled(stage: Int32, after seconds: Int) -> String {
        switch stage {
        case 0: return "no TCP connection in \(seconds) s"
        case 1: return "TCP connected, but no TLS handshake from the broker in \(seconds) s"
        default: return "TLS up, but no CONNACK from the broker in \(seconds) s"
        }
    }

    /// Why the connect failed, if the socket says it did: a refused or reset
    /// TCP connect leaves the socket closed (POLLHUP) with SO_ERROR set, which
    /// libmosquitto's TLS read path consumes without reporting.
    private func failedConnect() -> String? {
        let descriptor = mosquitto_socket(handle)
        guard descriptor >= 0 else { return nil }
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 0) > 0, entry.revents & Int16(POLLHUP | POLLERR) != 0 else { return nil }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error != 0 {
            return String(cString: strerror(error))
        }
        return "connection refused or closed by the peer"
    }

    private func attemptFailed(_ code: Int32) {
        var reason = MosquittoLibrary.describe(code)
        if code == MOSQ_ERR_ERRNO.rawValue { reason += ": " + String(cString: strerror(errno)) }
        attemptFailed(reason: reason, failure: Self.failure(code))
    }

    private func attemptFailed(reason: String, failure detected: UpstreamConnectFailure) {
        // A refused CONNACK ends the attempt with whatever error the socket
        // or the loop shows next; the callback saw the refusal itself.
        let failure = callbacks.takeConnackRefusal() ? .refused : detected
        logger.warning("upstream connect attempt failed", metadata: [
            "mqtt.host": "\(settings.host)", "mqtt.port": "\(settings.port)", "reason": "\(reason)",
            "mqtt.failure": "\(failure.rawValue)",
        ])
        callbacks.connectFailed(failure)
    }

    /// The class of a libmosquitto error that ended a connect attempt.
    static func failure(_ code: Int32) -> UpstreamConnectFailure {
        switch code {
        case MOSQ_ERR_CONN_REFUSED.rawValue: return .refused
        case MOSQ_ERR_TLS.rawValue, MOSQ_ERR_TLS_HANDSHAKE.rawValue, MOSQ_ERR_OCSP.rawValue: return .tls
        case MOSQ_ERR_EAI.rawValue, MOSQ_ERR_LOOKUP.rawValue: return .dns
        case MOSQ_ERR_ERRNO.rawValue, MOSQ_ERR_NO_CONN.rawValue, MOSQ_ERR_CONN_LOST.rawValue: return .network
        case MOSQ_ERR_KEEPALIVE.rawValue, MOSQ_ERR_TIMEOUT.rawValue: return .timeout
        default: return .other
        }
    }
}
