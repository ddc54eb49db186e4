import CMosquitto

/// `mosquitto_lib_init` must run once per process before any client exists.
enum MosquittoLibrary {
    private static let initialized: Bool = {
        mosquitto_lib_init() == MOSQ_ERR_SUCCESS.rawValue
    }()

    static func ensureInitialized() -> Bool { initialized }

    /// libmosquitto's text for an error code.
    static func describe(_ code: Int32) -> String {
        guard let text = mosquitto_strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    /// An MQTT 5 reason code's name.
    static func describeReason(_ code: Int32) -> String {
        guard let text = mosquitto_reason_string(code) else { return "reason code \(code)" }
        return String(cString: text)
    }

    static func describeConnack(_ code: Int32) -> String {
        guard let text = mosquitto_connack_string(code) else { return "refused (\(code))" }
        return String(cString: text)
    }
}
