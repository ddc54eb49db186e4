import Foundation

/// What a test wants to vary in the gateway's configuration; the rest is a
/// fixed, valid configuration pointing at the test broker.
struct GatewaySettings: Sendable {
    var name = "gw-test"
    /// The `mappings:` list, as YAML list items at column 0 (`- name: …`).
    var mappings = StandardMappings.yaml
    var coapMaxBody: Int? = nil
    var httpMaxBody: Int? = nil
    var outboxMaxMessages: Int? = nil
    /// More `outbox:` keys, one `key: value` per entry.
    var outboxExtra: [String] = []
    var sync = "full"
    /// The test broker is a plain mosquitto: no AWS quotas unless a test asks.
    var profile = "generic"
    /// More `upstream:` keys, one `key: value` per entry.
    var upstreamExtra: [String] = []
    var logLevel = "info"
    /// `upstream.keep_alive`, seconds.
    var keepAlive = 30
    /// Extra top-level YAML appended verbatim (e.g. `mapping_files: [...]`).
    var extraYAML = ""
    /// Lines added to the `coap:` section, e.g. `notify_retransmits: 1`.
    var coapExtra: [String] = []
    /// A device registry, DTLS and HTTPS listeners; nil: plain listeners only.
    var security: GatewaySecurity? = nil
}

/// What a test with authenticated devices adds to the configuration.
struct GatewaySecurity: Sendable {
    var pki: DevicePKI
    /// Written to `devices/registry.yaml` (mode 0600).
    var devices: [TestDevice]
    /// Certificates for devices (`devices.ca_file`, and the gateway's DTLS certificate).
    var certificates = true
    /// More `devices:` keys, one `key: value` per entry (e.g. `max_failures: 3`).
    var devicesExtra: [String] = []
    /// More `coap.dtls:` keys.
    var dtlsExtra: [String] = []
}

/// Mappings most tests use. Topics start with `it/` so they are easy to tell
/// from anything else on the broker.
enum StandardMappings {
    static let yaml = """
        - name: temperature
          resource: /sensors/{device}/temperature
          auth: anonymous
          topic: it/sensors/{device}/temperature
          qos: 1
        - name: humidity-qos0
          resource: /sensors/{device}/humidity
          auth: anonymous
          topic: it/sensors/{device}/humidity
          qos: 0
        - name: patchable
          resource: /things/{thing}/state
          auth: anonymous
          methods: [PATCH, POST]
          topic: it/things/{thing}/state
          qos: 1
        - name: envelope
          resource: /env/{site}/{device*}
          auth: anonymous
          topic: it/env/{gateway}/{site}
          qos: 1
          payload: envelope
        - name: coap-only
          resource: /coap-only/{device}
          auth: anonymous
          protocols: [coap]
          topic: it/coap-only/{device}
          qos: 1

        """
}

extension GatewaySettings {
    /// The whole configuration file for a gateway listening on the given
    /// ports and forwarding to `brokerPort` as the test gateway client.
    func yaml(
        stateDirectory: String,
        brokerPort: UInt16,
        coapPort: UInt16,
        httpPort: UInt16,
        adminPort: UInt16,
        certificates: TestCertificates,
        dtlsPort: UInt16 = 0,
        httpsPort: UInt16 = 0,
        registryPattern: String = ""
    ) -> String {
        var text = """
            gateway:
              name: \(name)
              state_dir: \(stateDirectory)
            upstream:
              host: localhost
              port: \(brokerPort)
              profile: \(profile)
              keep_alive: \(keepAlive)
              max_inflight: 20
              tls:
                ca_file: \(certificates.caFile)
                cert_file: \(certificates.gateway.certificate)
                key_file: \(certificates.gateway.key)

            """
        for line in upstreamExtra { text += "  \(line)\n" }
        if let security {
            text += "devices:\n  files: [\"\(registryPattern)\"]\n"
            if security.certificates { text += "  ca_file: \(security.pki.deviceCA)\n" }
            for line in security.devicesExtra { text += "  \(line)\n" }
        }
        text += """
            coap:
              listen: ["127.0.0.1:\(coapPort)"]

            """
        if let coapMaxBody { text += "  max_body: \(coapMaxBody)\n" }
        for line in coapExtra { text += "  \(line)\n" }
        if let security {
            text += "  dtls:\n    listen: [\"127.0.0.1:\(dtlsPort)\"]\n"
            if security.certificates {
                text += "    cert_file: \(security.pki.gatewayServer.certificate)\n    key_file: \(security.pki.gatewayServer.key)\n"
            }
            for line in security.dtlsExtra { text += "    \(line)\n" }
        }
        text += """
            http:
              listen: ["127.0.0.1:\(httpPort)"]

            """
        if let httpMaxBody { text += "  max_body: \(httpMaxBody)\n" }
        if let security {
            text += "  tls:\n    listen: [\"127.0.0.1:\(httpsPort)\"]\n"
            text += "    cert_file: \(security.pki.gatewayServer.certificate)\n    key_file: \(security.pki.gatewayServer.key)\n"
        }
        text += "outbox:\n  sync: \(sync)\n"
        if let outboxMaxMessages { text += "  max_messages: \(outboxMaxMessages)\n" }
        for line in outboxExtra { text += "  \(line)\n" }
        text += "admin:\n  listen: [\"127.0.0.1:\(adminPort)\"]\n"
        text += "log:\n  level: \(logLevel)\n"
        if !extraYAML.isEmpty { text += extraYAML + (extraYAML.hasSuffix("\n") ? "" : "\n") }
        let items = mappings.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.isEmpty ? "" : "  " + $0 }
            .joined(separator: "\n")
        if !mappings.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            text += "mappings:\n" + items + "\n"
        }
        return text
    }
}
