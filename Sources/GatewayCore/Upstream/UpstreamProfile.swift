/// Which broker's rules the gateway follows.
public enum UpstreamProfile: String, Sendable, CaseIterable {
    /// AWS IoT Core: its quotas and topic rules are checked and respected.
    case awsIotCore = "aws-iot-core"
    /// Any MQTT broker: only MQTT's own limits apply.
    case generic
}

/// The MQTT protocol version spoken upstream.
public enum MQTTVersion: String, Sendable, CaseIterable {
    case mqtt311
    case mqtt5
}
