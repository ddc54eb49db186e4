import Foundation
import Testing
@testable import GatewayCore

@Suite("Configuration: devices, DTLS, HTTPS, mapping auth")
struct ConfigSecurityTests {
    static let anonymousMapping = """
        mappings:
          - name: open
            resource: /open/{x}
            auth: anonymous
            topic: dt/{x}

        """

    @Test func aRegistryTurnsDTLSOnAndIsLoadedWithTheConfiguration() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        _ = try fixture.write("devices/k.yaml", "devices:\n  - id: k1\n    token_sha256: \(Secrets.tokenHash("t").hex)\n")
        let config = try ConfigLoader.load(path: fixture.write("gateway.yaml", ConfigFixture.base + """
            devices:
              files: ["devices/*.yaml"]
              max_failures: 5
              failure_window: 30s
              lockout: 2m

            """ + Self.anonymousMapping))
        #expect(config.devices.files == [fixture.directory.appendingPathComponent("devices/*.yaml").path])
        #expect(config.devices.failureLimit == FailureLimit(failures: 5, window: 30, lockout: 120))
        #expect(config.registry.device(id: "k1") != nil)
        #expect(config.coap.dtls.listen == [ListenAddress(host: "0.0.0.0", port: 5684)])
        #expect(config.coap.dtls.maxHandshakes == 64 && config.coap.dtls.idleTimeout == 300)
        #expect(config.coap.listen == [ListenAddress(host: "127.0.0.1", port: 5683)])
    }

    @Test func httpsNeedsItsCertificateAndDefaultsTo8443() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let config = try ConfigLoader.load(path: fixture.write("gateway.yaml", ConfigFixture.base + """
            devices:
              files: ["devices/*.yaml"]
              ca_file: ca.pem
            http:
              tls:
                cert_file: client.pem
                key_file: client.key
            coap:
              dtls:
                listen: ["127.0.0.1:15684"]
                cert_file: client.pem
                key_file: client.key
                max_handshakes: 10
                idle_timeout: 1m

            """ + Self.anonymousMapping))
        let tls = try #require(config.http.tls)
        #expect(tls.listen == [ListenAddress(host: "0.0.0.0", port: 8443)])
        #expect(tls.caFile == fixture.directory.appendingPathComponent("ca.pem").path)
        #expect(config.coap.dtls.caFile == tls.caFile)
        #expect(config.coap.dtls.certFile != nil && config.coap.dtls.maxHandshakes == 10 && config.coap.dtls.idleTimeout == 60)

        let missingKey = try fixture.issues(ConfigFixture.base + "http:\n  tls:\n    cert_file: client.pem\n" + Self.anonymousMapping)
        #expect(missingKey == ["12:5: missing required key 'key_file' in http.tls"], "\(missingKey)")
    }

    @Test func plainAndSecureOnOneAddressIsAnError() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let issues = try fixture.issues(ConfigFixture.base + """
            coap:
              listen: ["127.0.0.1:5683"]
              dtls:
                listen: ["127.0.0.1:5683"]

            """ + Self.anonymousMapping)
        // Reported by the listener check, at the DTLS address itself.
        #expect(issues.count == 1 && issues[0].hasPrefix("13:14: coap.dtls.listen 127.0.0.1:5683 and coap.listen 127.0.0.1:5683 ("), "\(issues)")
        #expect(issues.first?.contains("overlap on UDP port 5683") == true, "\(issues)")
    }

    @Test func mappingAuthKeysAreChecked() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let issues = try fixture.issues(ConfigFixture.base + """
            mappings:
              - name: a
                resource: /s/{device}
                identity: dev
                topic: dt/{device}
              - name: b
                resource: /o/{x}
                auth: anonymous
                topic: dt/{device_id}/{x}
              - name: c
                resource: /c/{x}
                auth: anonymous
                allow: [kitchen]
                topic: dt/{x}
              - name: d
                resource: /d/{device_id}
                topic: dt/d
              - name: e
                resource: /e/{x}
                auth: everyone
                topic: dt/e

            """)
        #expect(issues.contains("13:15: identity 'dev' is not a variable of resource '/s/{device}' (it has {device})"), "\(issues)")
        #expect(issues.contains("18:12: topic uses {device_id}, which only an auth: device mapping has"), "\(issues)")
        #expect(issues.contains("22:12: allow lists devices and groups; it cannot be used with auth: anonymous"), "\(issues)")
        #expect(issues.contains { $0.hasPrefix("25:15: '{device_id}' is reserved") }, "\(issues)")
        #expect(issues.contains("29:11: auth must be 'device' or 'anonymous', got 'everyone'"), "\(issues)")
    }

    @Test func deviceMappingsWithoutARegistryAreAWarningNotAnError() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let config = try ConfigLoader.load(path: fixture.write("gateway.yaml", ConfigFixture.base + """
            coap:
              listen: ["0.0.0.0:5683"]
            mappings:
              - name: t
                resource: /s/{device}/t
                identity: device
                topic: dt/{device_id}/t

            """))
        let messages = config.warnings.map(\.message)
        #expect(messages.contains { $0.contains("no device registry is configured") && $0.contains("4.01 / 401") }, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("coap.listen 0.0.0.0:5683 takes plain CoAP from the network") }, "\(messages)")
        #expect(config.mappings[0].auth == .device && config.mappings[0].identity == "device")
    }

    @Test func registryProblemsFailTheConfiguration() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let file = try fixture.write("devices/k.yaml", "devices:\n  - id: k1\n    psk: xyz\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        let issues = try fixture.issues(ConfigFixture.base + "devices:\n  files: [\"devices/*.yaml\"]\n" + Self.anonymousMapping)
        #expect(issues == ["3:10: psk of device 'k1' must be 2 to 128 hex digits (1 to 64 bytes)"], "\(issues)")
        let missing = try fixture.issues(ConfigFixture.base + "devices:\n  files: [\"nope.yaml\"]\n" + Self.anonymousMapping)
        #expect(missing.count == 1 && missing[0].hasPrefix("11:11: devices.files: "), "\(missing)")
    }
}
