import Foundation

/// A harness broker that refuses some of the gateway's subscriptions with
/// SUBACK 0x80, as AWS IoT Core does when the gateway's policy lacks
/// iot:Subscribe on a filter.
///
/// mosquitto's `acl_file` cannot do this (it grants every subscription and
/// then delivers nothing); its dynamic-security plugin can. The plugin only
/// admits clients it knows, so both harness identities are listed: the
/// gateway with a role that denies `refused` (subscribe patterns), the test
/// subscriber (and the shadow double, which uses its certificate) with the
/// default access, which allows everything.
enum PolicyBroker {
    static let pluginCandidates = [
        "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
        "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
        "/usr/lib/mosquitto_dynamic_security.so",
    ]

    static var plugin: String? { pluginCandidates.first { FileManager.default.fileExists(atPath: $0) } }

    /// A broker (not started) refusing the gateway's subscriptions that
    /// `refused` patterns match.
    static func make(certificates: TestCertificates, directory: TemporaryDirectory, refused: [String]) throws -> MosquittoBroker {
        guard let plugin else {
            throw HarnessError("mosquitto's dynamic-security plugin is not installed (looked in \(pluginCandidates))")
        }
        let broker = try MosquittoBroker(certificates: certificates, directory: directory)
        let denials: [[String: Any]] = refused.map { ["acltype": "subscribePattern", "topic": $0, "priority": 0, "allow": false] }
        let settings: [String: Any] = [
            "defaultACLAccess": ["publishClientSend": true, "publishClientReceive": true, "subscribe": true, "unsubscribe": true],
            "clients": [
                ["username": AWSLikeBroker.gatewayIdentity, "roles": [["rolename": "gateway-policy"]]],
                ["username": AWSLikeBroker.subscriberIdentity],
            ],
            "groups": [[String: Any]](),
            "roles": [["rolename": "gateway-policy", "acls": denials]],
        ]
        let json = try JSONSerialization.data(withJSONObject: settings, options: [.sortedKeys])
        let file = try directory.write(Array(json), to: "dynamic-security.json")
        guard let handle = FileHandle(forWritingAtPath: broker.configPath) else {
            throw HarnessError("cannot append to \(broker.configPath)")
        }
        defer { try? handle.close() }
        try handle.seekToEnd()
        let lines = ["", "# refusals by policy (appended by PolicyBroker)", "plugin \(plugin)", "plugin_opt_config_file \(file)", ""]
        try handle.write(contentsOf: Data(lines.joined(separator: "\n").utf8))
        return broker
    }
}
