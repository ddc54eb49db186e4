import CCoAP
import Logging
import Synchronization

/// libcoap logs through one process-wide handler without a context pointer,
/// so its target logger lives in a global.
enum CoAPLogBridge {
    private static let logger = Mutex<Logger?>(nil)

    static func install(_ target: Logger) {
        logger.withLock { $0 = target }
        coap_set_log_handler { level, message in
            guard let message else { return }
            CoAPLogBridge.forward(level: level, message: String(cString: message))
        }
        // libcoap's info level reports every session; keep it for debug runs.
        coap_set_log_level(target.logLevel <= .debug ? coap_log_t(LOG_INFO) : coap_log_t(LOG_WARNING))
    }

    private static func forward(level: coap_log_t, message: String) {
        guard let target = logger.withLock({ $0 }) else { return }
        var swiftLevel: Logger.Level
        switch level {
        case ...coap_log_t(LOG_ERR): swiftLevel = .error
        case coap_log_t(LOG_WARNING): swiftLevel = .warning
        case coap_log_t(LOG_NOTICE): swiftLevel = .notice
        default: swiftLevel = .debug
        }
        // libcoap warns each time a new peer pushes out a DTLS hello or
        // handshake older than 30 s: under a ClientHello flood from spoofed
        // addresses that is a warning per datagram. It is the handshake
        // limit working, not a fault.
        if swiftLevel == .warning && message.contains("Incomplete session timed out") { swiftLevel = .debug }
        let text = message.hasSuffix("\n") ? String(message.dropLast()) : message
        target.log(level: swiftLevel, "libcoap", metadata: ["coap.log": "\(text)"])
    }
}
