import Foundation
import Testing
@testable import GatewayCore

/// A temporary directory with the files a configuration refers to.
struct ConfigFixture {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Real PEM files: the loader parses every certificate and key it is given.
        let pem = try TestPEM.shared()
        for (name, text) in [("ca.pem", pem.ca), ("client.pem", pem.clientCertificate), ("client.key", pem.clientKey)] {
            try Data(text.utf8).write(to: directory.appendingPathComponent(name))
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory.appendingPathComponent("client.key").path)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    static let base = """
        gateway:
          name: gw-01
          state_dir: state
        upstream:
          host: broker.example
          tls:
            ca_file: ca.pem
            cert_file: client.pem
            key_file: client.key

        """

    /// Loads `text` and returns the issues as `LINE:COLUMN: message` (file name dropped).
    func issues(_ text: String) throws -> [String] {
        let path = try write("gateway.yaml", text)
        do {
            _ = try ConfigLoader.load(path: path)
            return []
        } catch {
            return error.issues.map { "\($0.location.line):\($0.location.column): \($0.message)" }
        }
    }
}

@Suite("Configuration")
struct ConfigLoaderTests {
    @Test func minimalConfigGetsTheDocumentedDefaults() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let config = try ConfigLoader.load(path: fixture.write("gateway.yaml", ConfigFixture.base))
        #expect(config.gateway.name == "gw-01")
        #expect(config.gateway.stateDirectory == fixture.directory.appendingPathComponent("state").path)
        #expect(config.upstream.port == 8883)
        #expect(config.upstream.clientID == "gw-01")
        #expect(config.upstream.keepAlive == 60)
        #expect(config.upstream.maxInflight == 20)
        #expect(config.upstream.tls.caFile == fixture.directory.appendingPathComponent("ca.pem").path)
        // Plain listeners stay on this machine unless told otherwise; DTLS
        // is off without a device registry.
        #expect(config.coap.listen == [ListenAddress(host: "127.0.0.1", port: 5683)])
        #expect(config.coap.dtls.listen.isEmpty)
        #expect(config.http.tls == nil)
        #expect(config.coap.maxBody == 131_072)
        #expect(config.http.listen == [ListenAddress(host: "127.0.0.1", port: 8080)])
        #expect(config.http.maxBody == 131_072)
        #expect(config.outbox.maxMessages == 1_000_000)
        #expect(config.outbox.maxBytes == 536_870_912)
        #expect(config.outbox.sync == .full)
        #expect(config.log.level == .info)
        #expect(config.mappings.isEmpty)
    }

    @Test func fullConfigWithInlineAndFileMappingsInOrder() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        _ = try fixture.write("maps/b.yaml", """
            mappings:
              - name: from-b
                resource: /b/{id}
                topic: dt/b/{id}
            """)
        _ = try fixture.write("maps/a.yaml", """
            mappings:
              - name: from-a
                resource: /a/{id}
                topic: dt/a/{id}
                qos: 0
                protocols: [http]
                methods: [PUT]
                payload: envelope
                retain: true
            """)
        let config = try ConfigLoader.load(path: fixture.write("gateway.yaml", ConfigFixture.base + """
            coap:
              listen: ["127.0.0.1:5683", "[::1]:5683"]
              max_body: 64KiB
            http:
              listen: "127.0.0.1:8080"
              max_body: 1024
              threads: 1
            outbox:
              max_messages: 10
              max_bytes: 1MiB
              sync: normal
            log:
              level: debug
            mapping_files: ["maps/*.yaml"]
            mappings:
              - name: inline
                resource: /i/{rest*}
                topic: dt/{gateway}/{rest}
            """))
        #expect(config.mappings.map(\.name) == ["inline", "from-a", "from-b"])
        let a = config.mappings[1]
        #expect(a.qos == .atMostOnce && a.retain && a.payload == .envelope)
        #expect(a.protocols == [.http] && a.methods == [.put])
        #expect(a.location.file.hasSuffix("maps/a.yaml") && a.location.line == 2)
        #expect(config.coap.listen.count == 2 && config.coap.listen[1].isIPv6)
        #expect(config.coap.maxBody == 65_536)
        #expect(config.http.listen == [ListenAddress(host: "127.0.0.1", port: 8080)])
        #expect(config.outbox.sync == .normal && config.outbox.maxBytes == 1 << 20)
    }

    @Test func everyProblemIsReportedWithItsLineAndColumn() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let issues = try fixture.issues("""
            gateway:
              name: "bad name!"
            upstream:
              host: broker.example
              prot: 8883
              tls:
                ca_file: missing.pem
                cert_file: client.pem
                key_file: client.key
            outbox:
              sync: sometimes
            mappings:
              - name: a
                resource: /a/{id}
                topic: dt/{device}
              - name: a
                resource: /b
                topic: dt/b
                qos: 2
            """)
        #expect(issues.contains { $0.hasPrefix("2:9: gateway.name may contain only") })
        #expect(issues.contains { $0.hasPrefix("5:3: unknown key 'prot' in upstream (did you mean 'port'?)") })
        #expect(issues.contains { $0.hasPrefix("7:14: upstream.tls.ca_file: cannot read 'missing.pem'") })
        #expect(issues.contains { $0.hasPrefix("11:9: outbox.sync must be 'full' or 'normal'") })
        #expect(issues.contains { $0.hasPrefix("15:12: topic uses {device}, which is not a variable") })
        #expect(issues.contains { $0.hasPrefix("16:11: duplicate mapping name 'a'") })
        #expect(issues.contains { $0.hasPrefix("19:10: QoS 2 is not supported by AWS IoT Core") })
        #expect(issues.count == 7)
    }

    @Test func yamlSyntaxErrorsPointAtTheProblem() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let issues = try fixture.issues("gateway:\n  name: [unclosed\n")
        #expect(issues.count == 1)
        #expect(issues.first?.contains("invalid YAML") == true)
    }

    @Test func missingSectionsAreNamed() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let issues = try fixture.issues("log:\n  level: info\n")
        #expect(issues.contains("1:1: missing required key 'gateway' in the configuration"))
        #expect(issues.contains("1:1: missing required key 'upstream' in the configuration"))
    }

    @Test func errorsInMappingFilesNameThatFile() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let mappingPath = try fixture.write("maps/bad.yaml", "mappings:\n  - name: x\n    resource: nope\n    topic: dt/x\n")
        let path = try fixture.write("gateway.yaml", ConfigFixture.base + "mapping_files: [maps/bad.yaml, maps/absent.yaml]\n")
        do {
            _ = try ConfigLoader.load(path: path)
            Issue.record("expected errors")
        } catch {
            let lines = error.issues.map(\.description)
            #expect(lines.contains { $0.hasSuffix("maps/bad.yaml:3:15: resource must start with '/'") && $0.contains(FilePaths.display(mappingPath).replacingOccurrences(of: "maps/bad.yaml", with: "")) })
            #expect(lines.contains { $0.contains("gateway.yaml:") && $0.contains("mapping file 'maps/absent.yaml' does not exist") })
        }
    }

    @Test func unreadableConfigIsOneIssue() throws {
        do {
            _ = try ConfigLoader.load(path: "/nonexistent/gateway.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "/nonexistent/gateway.yaml:1:1: error: cannot read file: No such file or directory")
        }
    }

    @Test(arguments: ["broker.example:8883", "[2001:db8::1]:8883"])
    func aHostThatCarriesAPortIsAnError(host: String) throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let text = ConfigFixture.base.replacingOccurrences(of: "host: broker.example", with: "host: \"\(host)\"")
        #expect(try fixture.issues(text) == ["5:9: upstream.host must not carry a port ('\(host)'): put the port in upstream.port"])
    }

    @Test func theStatusTopicTakesTheGatewayName() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let text = ConfigFixture.base.replacingOccurrences(of: "host: broker.example", with: "host: broker.example\n  status_topic: \"dt/status/{gateway}\"")
        let path = try fixture.write("gateway.yaml", text)
        #expect(try ConfigLoader.load(path: path).upstream.statusTopic == "dt/status/gw-01")
    }

    @Test(arguments: [
        ("dt/{device}/status", "6:17: upstream.status_topic may use {gateway} only, not {device}"),
        ("dt/+/status", "6:17: upstream.status_topic: "),
    ])
    func aStatusTopicWithOtherVariablesOrWildcardsIsAnError(topic: String, expected: String) throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let text = ConfigFixture.base.replacingOccurrences(of: "host: broker.example", with: "host: broker.example\n  status_topic: \"\(topic)\"")
        let issues = try fixture.issues(text)
        #expect(issues.count == 1 && issues[0].hasPrefix(expected), "\(issues)")
    }

    @Test(arguments: ["2001:db8::1", "broker.example", "192.0.2.7"])
    func hostsWithoutAPortAreFine(host: String) throws {
        #expect(!SectionParser.carriesPort(host))
    }

    @Test func aMappingFilesGlobThatMatchesNothingIsAWarningAndNoMappingsAtAllIsAnother() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let path = try fixture.write("gateway.yaml", ConfigFixture.base + "mapping_files: [\"mappings.d/*.yaml\"]\n")
        let config = try ConfigLoader.load(path: path)
        let warnings = config.warnings.map { "\($0.location.line): \($0.message)" }
        #expect(warnings.contains { $0.hasPrefix("10: mapping_files pattern 'mappings.d/*.yaml' matches no file") }, "\(warnings)")
        #expect(warnings.contains("1: no mappings: add `mappings:` or `mapping_files:` (every request would be answered 4.04)"), "\(warnings)")
    }

    @Test func aDirectoryGivenAsTheConfigIsNamedAsSuch() throws {
        let directory = NSTemporaryDirectory() + "iotgw-config-dir-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            _ = try ConfigLoader.load(path: directory)
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "\(directory):1:1: error: is a directory, not a YAML file (name the file itself, e.g. gateway.yaml)")
            #expect(!error.description.contains("NSCocoaErrorDomain"))
        }
    }

    @Test(arguments: ["0.0.0.0:5683", "[::]:5683", "127.0.0.1:1"])
    func listenAddressesParse(_ text: String) {
        #expect(ListenAddress.parse(text) != nil)
    }

    @Test(arguments: ["localhost:5683", "0.0.0.0", "[::]5683", "1.2.3.4:99999", "::1:80"])
    func badListenAddresses(_ text: String) {
        #expect(ListenAddress.parse(text) == nil)
    }

    @Test func byteSizes() {
        #expect(ByteSize.parse("131072") == 131_072)
        #expect(ByteSize.parse("128KiB") == 131_072)
        #expect(ByteSize.parse("512 MiB") == 536_870_912)
        #expect(ByteSize.parse("1GB") == 1_000_000_000)
        #expect(ByteSize.parse("lots") == nil)
        #expect(ByteSize.parse("-1KiB") == nil)
    }
}

@Suite("Configuration: upstream profiles")
struct UpstreamProfileConfigTests {
    func load(_ upstream: String, mappings: String = "") throws -> (GatewayConfig?, [String]) {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let text = """
            gateway:
              name: gw-01
            upstream:
              host: broker.example
            \(upstream)
              tls:
                ca_file: ca.pem
                cert_file: client.pem
                key_file: client.key
            \(mappings)
            """
        let path = try fixture.write("gateway.yaml", text)
        do {
            return (try ConfigLoader.load(path: path), [])
        } catch {
            return (nil, error.issues.map { "\($0.location.line):\($0.location.column): \($0.message)" })
        }
    }

    @Test func awsIsTheDefaultWithItsQuotas() throws {
        let (config, issues) = try load("  port: 8883")
        #expect(issues.isEmpty)
        let upstream = try #require(config?.upstream)
        #expect(upstream.profile == .awsIotCore)
        #expect(upstream.publishRate == 100)
        #expect(upstream.byteRate == 512 * 1024)
        #expect(upstream.connections == 1)
        #expect(upstream.tls.alpn == nil)
        #expect(upstream.clientID(connection: 0) == "gw-01")
    }

    @Test func port443OffersTheAWSALPN() throws {
        let (config, _) = try load("  port: 443")
        #expect(config?.upstream.tls.alpn == "x-amzn-mqtt-ca")
    }

    @Test func genericHasNoQuotasAndAllowsQoS2() throws {
        let (config, issues) = try load("  profile: generic", mappings: """
            mappings:
              - name: two
                resource: /a
                topic: a/b/c/d/e/f/g/h/i/j
                qos: 2
            """)
        #expect(issues.isEmpty, "\(issues)")
        #expect(config?.upstream.publishRate == nil)
        #expect(config?.upstream.byteRate == nil)
        #expect(config?.mappings.first?.qos == .exactlyOnce)
    }

    @Test func connectionsNumberTheClientIDs() throws {
        let (config, _) = try load("  client_id: gw\n  connections: 3\n  publish_rate: 50\n  byte_rate: unlimited")
        let upstream = try #require(config?.upstream)
        #expect((0..<3).map(upstream.clientID(connection:)) == ["gw-1", "gw-2", "gw-3"])
        #expect(upstream.publishRate == 50 && upstream.byteRate == nil)
    }

    @Test func keepAliveOutsideAWSRangeIsClampedWithAWarning() throws {
        let (config, _) = try load("  keep_alive: 5")
        #expect(config?.upstream.keepAlive == 30)
        #expect(config?.warnings.first?.message.contains("outside AWS IoT Core's 30..1200 s") == true)
    }

    @Test func awsRulesAreConfigErrorsWithTheirLines() throws {
        let (_, issues) = try load(
            "  client_id: \"$" + String(repeating: "x", count: 130) + "\"",
            mappings: """
            mappings:
              - name: deep
                resource: /a/{b}
                topic: a/b/c/d/e/f/g/h/{b}
              - name: sys
                resource: /s
                topic: $SYS/x
              - name: two
                resource: /t
                topic: dt/t
                qos: 2
            """)
        #expect(issues.contains { $0.hasPrefix("5:14: client ID") && $0.contains("AWS IoT Core allows 128") })
        #expect(issues.contains { $0.hasPrefix("5:14: AWS IoT Core does not accept client IDs starting with '$'") })
        #expect(issues.contains { $0.hasPrefix("13:12: topic has at least 8 '/' separators") })
        #expect(issues.contains { $0.hasPrefix("16:12: AWS IoT Core accepts '$' topics only") })
        #expect(issues.contains { $0.hasPrefix("20:10: QoS 2 is not supported by AWS IoT Core") })
    }

    @Test func aKeyFileEveryUserCanReadIsRefused() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: fixture.directory.appendingPathComponent("client.key").path)
        let path = try fixture.write("gateway.yaml", ConfigFixture.base)
        do {
            _ = try ConfigLoader.load(path: path)
            Issue.record("expected the key to be refused")
        } catch {
            #expect(error.issues.first?.message.contains("readable by every user (mode 644)") == true)
        }
    }
}

@Suite("Configuration: formats, batches, discovery")
struct FormatKeysConfigTests {
    func issues(_ mapping: String) throws -> [String] {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        return try fixture.issues(ConfigFixture.base + "mappings:\n" + mapping)
    }

    func check(_ mapping: String, _ expected: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let got = try issues(mapping)
        #expect(got == expected, "\(got)", sourceLocation: sourceLocation)
    }

    @Test func formatKeysCompile() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let config = try ConfigLoader.load(path: fixture.write("gateway.yaml", ConfigFixture.base + """
            mappings:
              - {name: a, resource: "/s/{device}", topic: "dt/{device}/{name}", payload: senml, batch: true, rt: [temperature, x.y], if: core.s}
              - {name: b, resource: "/j/{device}", topic: "dt/{device}", payload: json, accept: [60], ct: [60, application/json]}
            """))
        let rules = config.mappings
        #expect(rules[0].accept == ["application/senml+json", "application/senml+cbor"])
        #expect(rules[0].link == LinkAttributes(resourceTypes: ["temperature", "x.y"], interfaces: ["core.s"], contentFormats: [110, 112]))
        #expect(rules[1].accept == ["application/cbor"])
        #expect(rules[1].link.contentFormats == [60, 50])
    }

    @Test func badFormatKeysAreLocatedErrors() throws {
        try check("  - {name: a, resource: /s, topic: \"t/{name}\", payload: senml}\n", ["11:36: topic uses {name}, a SenML record's name: add batch: true so each record is published on its own"])
        try check("  - {name: a, resource: /s, topic: t, payload: json, accept: [text/plain]}\n", ["11:63: accept: payload: json cannot read text/plain; it reads application/json, application/cbor"])
        try check("  - {name: a, resource: /s, topic: t, batch: true, ack: delivered}\n", ["11:57: ack: delivered does not apply to a batch: a batch is answered once all of it is stored"])
        try check("  - {name: a, resource: /s, topic: t, rt: \"a b\"}\n", ["11:43: rt (resource type) 'a b' must be a non-empty token without spaces, quotes or backslashes"])
    }
}
