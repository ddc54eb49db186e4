import Foundation

/// A mosquitto that enforces what AWS IoT Core enforces and mosquitto can
/// express: client certificates required (the harness broker already does
/// that), QoS at most 1, the largest packet AWS IoT Core accepts, and an ACL
/// by certificate identity (`use_identity_as_username true`: the user name is
/// the certificate's CN, so the gateway is `gw-test`, the subscriber
/// `test-subscriber`, see `TestCertificates`).
///
/// It is the harness's `MosquittoBroker` (same start-up, port handling and
/// log) with these settings appended to its configuration file before it
/// first starts; `selfCheck` in AWSProfileTests proves they take effect.
enum AWSLikeBroker {
    /// AWS IoT Core's limits, as its quota page states them.
    static let maxPayloadBytes = 128 * 1024
    static let maxTopicBytes = 256

    /// The largest PUBLISH AWS IoT Core accepts, in the MQTT 3.1.1 encoding:
    /// fixed header (1 byte) + Remaining Length (a variable-length integer:
    /// 3 bytes for values from 16,384 to 2,097,151) + topic length (2) +
    /// topic (256) + packet identifier (2, QoS 1) + payload (131,072).
    /// MQTT 5 adds a properties block: its length (1 byte) and, for a
    /// mapping with `expiry`, the Message Expiry Interval (1 + 4 bytes) —
    /// overhead AWS IoT Core does not count against the 128 KiB payload.
    static func largestPublishRemainingLength(mqtt5: Bool = false) -> Int {
        2 + maxTopicBytes + 2 + (mqtt5 ? 1 + 5 : 0) + maxPayloadBytes  // 131,332 (3.1.1) / 131,338 (5)
    }
    static var largestPublishOnTheWire: Int { 1 + 3 + largestPublishRemainingLength() }  // 131,336

    /// `max_packet_size`: mosquitto 2.0 refuses a packet when
    /// `remaining_length + 1 > max_packet_size` (it counts the fixed header's
    /// first byte but not the Remaining Length bytes), so this value lets
    /// exactly AWS's largest publish through — 131,072 bytes of payload on a
    /// 256-byte topic at QoS 1 — and disconnects the client for one byte
    /// more, as AWS IoT Core would. With MQTT 5 the broker also announces it
    /// in CONNACK (Maximum Packet Size), and libmosquitto then refuses larger
    /// publishes itself.
    static func maxPacketSize(mqtt5: Bool = false) -> Int { largestPublishRemainingLength(mqtt5: mqtt5) + 1 }  // 131,333 / 131,339

    /// The CNs of the harness's client certificates (`TestCertificates`).
    static let gatewayIdentity = "gw-test"
    static let subscriberIdentity = "test-subscriber"
    /// Where the harness's and our subscribers publish their readiness probes.
    static let probeTopics = "iot-it-probe/#"

    /// An ACL file: the gateway may write only `gatewayWrites`; the test
    /// subscriber may read `subscriberReads` and use the probe topics.
    static func acl(gatewayWrites: [String], subscriberReads: [String]) -> String {
        var lines = ["# AWS-like: least privilege by certificate identity", "user \(gatewayIdentity)"]
        lines += gatewayWrites.map { "topic write \($0)" }
        lines += ["", "user \(subscriberIdentity)"]
        lines += subscriberReads.map { "topic read \($0)" }
        lines.append("topic readwrite \(probeTopics)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A broker (not started) with the AWS-like settings and this ACL.
    static func make(
        certificates: TestCertificates, directory: TemporaryDirectory,
        gatewayWrites: [String], subscriberReads: [String], logAll: Bool = false, mqtt5: Bool = false
    ) throws -> MosquittoBroker {
        let broker = try MosquittoBroker(certificates: certificates, directory: directory)
        let aclPath = try directory.write(acl(gatewayWrites: gatewayWrites, subscriberReads: subscriberReads), to: "aws-like.acl")
        var extra = [
            "",
            "# AWS IoT Core-like limits (appended by AWSLikeBroker)",
            "require_certificate true",
            "use_identity_as_username true",
            "max_qos 1",
            "max_packet_size \(maxPacketSize(mqtt5: mqtt5))",
            "acl_file \(aclPath)",
        ]
        if logAll { extra.append("log_type all") }
        guard let handle = FileHandle(forWritingAtPath: broker.configPath) else {
            throw HarnessError("cannot append to \(broker.configPath)")
        }
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((extra.joined(separator: "\n") + "\n").utf8))
        return broker
    }
}

/// `EndToEnd` with an AWS-like broker (this ACL and these limits) and a
/// subscriber on `filters` with a clean session (the broker stays up in these
/// tests); the gateway is connected when `body` runs.
enum AWSLikeEndToEnd {
    static func run<T>(
        _ label: String,
        settings: GatewaySettings,
        gatewayWrites: [String],
        subscriberReads: [String],
        filters: [String],
        logAll: Bool = false,
        mqtt5: Bool = false,
        _ body: (EndToEnd) async throws -> T
    ) async throws -> T {
        try await EndToEnd.run(
            label, settings: settings,
            makeBroker: { certificates, directory in
                try AWSLikeBroker.make(
                    certificates: certificates, directory: directory,
                    gatewayWrites: gatewayWrites, subscriberReads: subscriberReads, logAll: logAll, mqtt5: mqtt5
                )
            },
            subscriberFilters: filters, persistentSubscriber: false, body
        )
    }
}
