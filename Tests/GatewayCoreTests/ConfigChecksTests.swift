import Foundation
import Testing
@testable import GatewayCore

/// What a load reports, each as `LINE:COLUMN: message` (file name dropped).
struct LoadReport {
    var errors: [String] = []
    var warnings: [String] = []
    var config: GatewayConfig?
    /// The whole error text as check-config prints it (empty when it loaded).
    var printed = ""

    func error(at place: String) -> String? { errors.first { $0.hasPrefix(place + ": ") } }
    func warning(at place: String) -> String? { warnings.first { $0.hasPrefix(place + ": ") } }
}

extension ConfigFixture {
    func report(
        _ text: String, environment: [String: String] = [:], now: Date = Date(), file: String = "gateway.yaml"
    ) throws -> LoadReport {
        let path = try write(file, text)
        func line(_ issue: ConfigIssue) -> String { "\(issue.location.line):\(issue.location.column): \(issue.message)" }
        do {
            let config = try ConfigLoader.load(path: path, environment: environment, now: now)
            return LoadReport(warnings: config.warnings.map(line), config: config)
        } catch {
            return LoadReport(errors: error.issues.map(line), warnings: error.warnings.map(line), printed: error.description)
        }
    }

    /// Replaces a file next to the configuration.
    func put(_ name: String, _ text: String, mode: Int = 0o600) throws {
        let path = try write(name, text)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }
}

/// The base configuration (9 lines) plus text starting at line 10.
private func config(_ rest: String) -> String { ConfigFixture.base + rest }

extension ConfigFixture {
    /// What a fresh fixture reports on the base configuration plus `rest`.
    static func reportOnBase(_ rest: String) throws -> LoadReport {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        return try fixture.report(config(rest))
    }
}

private let anonymous = """
    mappings:
      - name: any
        resource: /any
        auth: anonymous
        topic: dt/any

    """

@Suite("Configuration: mappings that can never match")
struct MappingShadowingTests {
    @Test func aRestPatternShadowsEveryLaterPathUnderIt() throws {
        let report = try ConfigFixture.reportOnBase("""
            mappings:
              - name: raw
                resource: /raw/{rest*}
                auth: anonymous
                topic: dt/raw
              - name: temp
                resource: /raw/temp/{device}
                auth: anonymous
                topic: dt/t/{device}

            """)
        let error = try #require(report.error(at: "16:15"), "\(report)")
        #expect(error.contains("mapping 'temp' can never match"), "\(error)")
        #expect(error.contains("/raw/{rest*}") && error.contains("'raw' (") && error.contains("gateway.yaml:11)"), "\(error)")
        #expect(error.contains("move 'temp' above it"), "a hint: \(error)")
        #expect(report.errors.count == 1, "\(report.errors)")
    }

    @Test func anExactDuplicateResourceIsAnError() throws {
        let report = try ConfigFixture.reportOnBase("""
            mappings:
              - name: first
                resource: /s/{a}/t
                auth: anonymous
                topic: dt/{a}
              - name: second
                resource: /s/{b}/t
                auth: anonymous
                topic: dt/second/{b}

            """)
        let error = try #require(report.error(at: "16:15"), "\(report)")
        #expect(error.contains("same pattern") && error.contains("'first' (") && error.contains(":11)"), "\(error)")
    }

    @Test func aVariableTakesALaterLiteral() throws {
        let report = try ConfigFixture.reportOnBase("""
            mappings:
              - name: any-room
                resource: /rooms/{room}
                auth: anonymous
                topic: dt/{room}
              - name: kitchen
                resource: /rooms/kitchen
                auth: anonymous
                topic: dt/kitchen

            """)
        #expect(report.error(at: "16:15")?.contains("mapping 'kitchen' can never match") == true, "\(report)")
    }

    @Test func partlyOverlappingMethodsAreAWarningNamingWhatIsLost() throws {
        let report = try ConfigFixture.reportOnBase("""
            mappings:
              - name: raw
                resource: /raw/{rest*}
                methods: [POST]
                protocols: [coap]
                auth: anonymous
                topic: dt/raw
              - name: temp
                resource: /raw/temp
                auth: anonymous
                topic: dt/t

            """)
        #expect(report.errors.isEmpty, "\(report)")
        let warning = try #require(report.warning(at: "18:15"), "\(report)")
        #expect(warning.contains("POST over coap") && warning.contains("'raw'"), "\(warning)")
        #expect(!warning.contains("PUT"), "\(warning)")
    }

    @Test func disjointMappingsAreFine() throws {
        let report = try ConfigFixture.reportOnBase("""
            mappings:
              - name: raw
                resource: /raw/{rest*}
                protocols: [coap]
                auth: anonymous
                topic: dt/raw
              - name: raw-http
                resource: /raw/x
                protocols: [http]
                auth: anonymous
                topic: dt/x
              - name: bare
                resource: /raw
                auth: anonymous
                topic: dt/bare
              - name: put-only
                resource: /raw/y
                methods: [PUT]
                protocols: [coap]
                auth: anonymous
                topic: dt/y

            """)
        // put-only: raw takes POST and PUT by default, so it is shadowed.
        #expect(report.errors.count == 1 && report.error(at: "26:15") != nil, "\(report)")
    }

    @Test(arguments: [
        ("/raw/{rest*}", "/raw/a/b", true),
        ("/raw/{rest*}", "/raw/{x*}", true),
        ("/raw/{rest*}", "/raw", false),
        ("/{a}/{b}", "/x/{c}", true),
        ("/{a}/{b}", "/x/{c*}", false),
        ("/x/{a}", "/x/{a}/y", false),
        ("/x/y", "/x/{a}", false),
        ("/", "/", true),
        ("/{rest*}", "/", false),
    ])
    func coverage(earlier: String, later: String, covered: Bool) throws {
        let a = try ResourcePattern.parse(earlier).get(), b = try ResourcePattern.parse(later).get()
        #expect(MappingShadowing.covers(a, b) == covered)
        // Each claim checked against the router's own matching on a sample path.
        if covered, let path = Self.samplePath(b) {
            #expect(a.match(path) != nil && b.match(path) != nil)
        }
    }

    static func samplePath(_ pattern: ResourcePattern) -> [String]? {
        pattern.segments.flatMap { segment -> [String] in
            switch segment {
            case .literal(let text): return [text]
            case .variable: return ["v"]
            case .rest: return ["r1", "r2"]
            }
        }
    }
}

@Suite("Configuration: listeners on one address and port")
struct ListenerConflictTests {
    @Test func httpAndAdminOnOnePortAreAnError() throws {
        let report = try ConfigFixture.reportOnBase("""
            http:
              listen: ["127.0.0.1:8080"]
            admin:
              listen: ["127.0.0.1:8080"]

            """ + anonymous)
        let error = try #require(report.error(at: "11:12"), "\(report)")
        #expect(error.contains("http.listen 127.0.0.1:8080 and admin.listen 127.0.0.1:8080") && error.contains("gateway.yaml:13)"), "\(error)")
        #expect(error.contains("TCP port 8080") && error.contains("another port"), "\(error)")
        #expect(report.errors.count == 1, "\(report.errors)")
    }

    @Test func adminOnTheDefaultHTTPAddressIsAnError() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let report = try fixture.report(config("admin:\n  listen: [\"127.0.0.1:8080\"]\n" + anonymous))
        let error = try #require(report.error(at: "11:12"), "\(report)")
        #expect(error.contains("admin.listen 127.0.0.1:8080 and http.listen 127.0.0.1:8080 (its default)"), "\(error)")
    }

    @Test func aWildcardAndASpecificAddressOfOneFamilyConflictOnTCP() throws {
        let report = try ConfigFixture.reportOnBase("""
            http:
              listen: ["0.0.0.0:8080", "[::]:8081"]
              tls:
                listen: ["[::1]:8081"]
                cert_file: client.pem
                key_file: client.key
            admin:
              listen: ["127.0.0.1:8080"]

            """ + anonymous)
        #expect(report.error(at: "13:14")?.contains("http.tls.listen [::1]:8081 and http.listen [::]:8081") == true, "\(report)")
        #expect(report.error(at: "11:12")?.contains("http.listen 0.0.0.0:8080 and admin.listen 127.0.0.1:8080") == true, "\(report)")
        #expect(report.errors.count == 2, "\(report.errors)")
    }

    @Test func ipv6AndIPv4WildcardsOnOneTCPPortAndTCPNextToUDPAreFine() throws {
        let report = try ConfigFixture.reportOnBase("""
            http:
              listen: ["0.0.0.0:8080", "[::]:8080"]
            coap:
              listen: ["127.0.0.1:8080", "0.0.0.0:5683", "[::]:5683"]
            admin:
              listen: ["127.0.0.1:9683", "[::1]:9683"]

            """ + anonymous)
        #expect(report.errors.isEmpty, "\(report)")
    }

    @Test func plainCoAPAndDTLSOverlappingOnOneUDPPortAreAnError() throws {
        let report = try ConfigFixture.reportOnBase("""
            coap:
              listen: ["0.0.0.0:5684", "127.0.0.1:5700"]
              dtls:
                listen: ["[::]:5684", "127.0.0.1:5700", "[::1]:5683"]

            """ + anonymous)
        let dualStack = try #require(report.error(at: "13:14"), "\(report)")
        #expect(dualStack.contains("coap.dtls.listen [::]:5684 and coap.listen 0.0.0.0:5684") && dualStack.contains("UDP port 5684"), "\(dualStack)")
        let same = try #require(report.error(at: "13:27"), "\(report)")
        #expect(same.contains("coap.dtls.listen 127.0.0.1:5700 and coap.listen 127.0.0.1:5700"), "\(same)")
        #expect(report.errors.count == 2, "[::1]:5683 meets nothing: \(report.errors)")
    }
}

@Suite("Configuration: certificate and key files")
struct CertificateFileTests {
    @Test func theFixturesRealFilesPass() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let report = try fixture.report(config(anonymous))
        #expect(report.errors.isEmpty && report.warnings.isEmpty, "\(report)")
    }

    @Test func aKeyWhereTheCAOrCertificateBelongsAndACertificateWhereTheKeyBelongs() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let pem = try TestPEM.shared()
        try fixture.put("ca.pem", pem.clientKey, mode: 0o644)
        try fixture.put("client.pem", pem.clientKey)
        try fixture.put("client.key", pem.clientCertificate)
        let report = try fixture.report(config(anonymous))
        #expect(report.error(at: "7:14")?.contains("upstream.tls.ca_file: 'ca.pem' holds a PRIVATE KEY block where CA certificates belong") == true, "\(report)")
        #expect(report.error(at: "8:16")?.contains("holds a PRIVATE KEY block where a certificate belongs (is it the key file?") == true, "\(report)")
        #expect(report.error(at: "9:15")?.contains("holds a certificate where the private key belongs") == true, "\(report)")
    }

    @Test func textThatIsNotPEM() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        try fixture.put("client.pem", "hello\n")
        let report = try fixture.report(config(anonymous))
        #expect(report.error(at: "8:16")?.contains("'client.pem' holds nothing in PEM form") == true, "\(report)")
    }

    @Test func aKeyThatDoesNotMatchTheCertificate() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        try fixture.put("client.key", try TestPEM.shared().otherKey)
        let report = try fixture.report(config(anonymous))
        let error = try #require(report.error(at: "9:15"), "\(report)")
        #expect(error.contains("is not the private key of the certificate in upstream.tls.cert_file (") && error.contains("gateway.yaml:8)"), "\(error)")
        #expect(report.errors.count == 1, "\(report.errors)")
    }

    @Test func rsaCertificatesAndKeysAreRead() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let pem = try TestPEM.shared()
        try fixture.put("client.pem", pem.rsaCertificate)
        try fixture.put("client.key", pem.rsaKey)
        let report = try fixture.report(config(anonymous))
        #expect(report.errors.isEmpty, "\(report)")
        try fixture.put("client.key", pem.clientKey)
        let mismatched = try fixture.report(config(anonymous))
        #expect(mismatched.error(at: "9:15")?.contains("is not the private key") == true, "\(mismatched)")
    }

    @Test func expiredAndNotYetValidCertificatesAreErrors() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let later = try fixture.report(config(anonymous), now: Date().addingTimeInterval(400 * 86_400))
        #expect(later.error(at: "8:16")?.contains("the certificate 'CN=gw-01' expired on ") == true, "\(later)")
        #expect(later.error(at: "7:14")?.contains("no certificate in it is valid now") == true, "\(later)")
        let earlier = try fixture.report(config(anonymous), now: Date().addingTimeInterval(-2 * 86_400))
        #expect(earlier.error(at: "8:16")?.contains("is not valid before ") == true, "\(earlier)")
    }

    @Test func aBundleWorksWhileOneOfItsCertificatesDoes() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let pem = try TestPEM.shared()
        let twoDaysOn = Date().addingTimeInterval(2 * 86_400)
        try fixture.put("ca.pem", pem.oneDayCA + pem.ca, mode: 0o644)
        let bundle = try fixture.report(config(anonymous), now: twoDaysOn)
        #expect(bundle.errors.isEmpty && bundle.warnings.isEmpty, "an expired root next to a valid one is fine: \(bundle)")
        try fixture.put("ca.pem", pem.oneDayCA, mode: 0o644)
        let alone = try fixture.report(config(anonymous), now: twoDaysOn)
        #expect(alone.error(at: "7:14")?.contains("the CA certificate 'CN=One Day CA' expired on") == true, "\(alone)")

        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        try fixture.put("ca.pem", garbage + pem.ca, mode: 0o644)
        let partly = try fixture.report(config(anonymous))
        #expect(partly.errors.isEmpty, "\(partly)")
        #expect(partly.warning(at: "7:14")?.contains("1 of its 2 CERTIFICATE blocks do not parse") == true, "\(partly)")
        try fixture.put("ca.pem", garbage, mode: 0o644)
        let none = try fixture.report(config(anonymous))
        #expect(none.error(at: "7:14")?.contains("holds no valid X.509 certificate") == true, "\(none)")
    }

    @Test func underThirtyDaysLeftIsAWarningWithTheDate() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let report = try fixture.report(config(anonymous), now: Date().addingTimeInterval(350 * 86_400))
        #expect(report.errors.isEmpty, "\(report)")
        let config = try #require(report.config)
        let warning = try #require(report.warning(at: "8:16"), "\(report)")
        #expect(warning.contains(" expires on 20") && warning.contains("UTC, in under 30 days"), "\(warning)")
        #expect(report.warning(at: "7:14")?.contains("the CA certificate 'CN=Test CA' expires on") == true, "\(report)")
        #expect(config.warnings.count == 2)
    }

    @Test func httpsAndDTLSFilesAreReadToo() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        try fixture.put("other.key", try TestPEM.shared().otherKey)
        let report = try fixture.report(config("""
            http:
              tls:
                listen: ["127.0.0.1:8443"]
                cert_file: client.key
                key_file: client.key
            coap:
              dtls:
                listen: ["127.0.0.1:5684"]
                cert_file: client.pem
                key_file: other.key

            """ + anonymous))
        #expect(report.error(at: "13:16")?.hasPrefix("13:16: http.tls.cert_file: 'client.key' holds a PRIVATE KEY block") == true, "\(report)")
        #expect(report.error(at: "19:15")?.contains("coap.dtls.key_file: 'other.key' is not the private key of the certificate in coap.dtls.cert_file") == true, "\(report)")
    }
}

@Suite("Configuration: environment references")
struct EnvironmentReferenceTests {
    static let fleet = """
        gateway:
          name: ${GW_NAME}
          state_dir: "${STATE:-state}"
        upstream:
          host: iot-${REGION}.example
          port: ${PORT:-8883}
          username: "a$${literal}b"
          tls:
            ca_file: ca.pem
            cert_file: client.pem
            key_file: client.key
        mappings:
          - name: rule
            resource: /r/{device}
            auth: anonymous
            topic: $aws/rules/ingest/${SITE:-lab}/{device}

        """

    @Test func referencesAreResolvedAndOtherDollarsAndBracesAreLeftAlone() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let report = try fixture.report(Self.fleet, environment: ["GW_NAME": "edge-7", "REGION": "eu-west-1", "SITE": "plant-2"])
        let config = try #require(report.config, "\(report)")
        #expect(config.gateway.name == "edge-7" && config.upstream.clientID == "edge-7")
        #expect(config.gateway.stateDirectory == fixture.directory.appendingPathComponent("state").path)
        #expect(config.upstream.host == "iot-eu-west-1.example" && config.upstream.port == 8883)
        #expect(config.upstream.username == "a${literal}b")
        #expect(config.mappings.first?.topic.text == "$aws/rules/ingest/plant-2/{device}")
    }

    @Test func anUnsetVariableIsAnErrorAtItsDollar() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let report = try fixture.report(Self.fleet, environment: ["GW_NAME": "edge-7"])
        let error = try #require(report.error(at: "5:13"), "\(report)")
        #expect(error.contains("environment variable REGION is not set") && error.contains("${REGION:-value}"), "\(error)")
        #expect(report.errors.count == 1, "\(report.errors)")
    }

    @Test func emptyIsAnErrorUnlessADefaultSaysSo() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let report = try fixture.report(Self.fleet, environment: ["GW_NAME": "", "REGION": "x", "PORT": "", "STATE": ""])
        #expect(report.error(at: "2:9")?.contains("GW_NAME is set but empty") == true, "\(report)")
        // ${PORT:-8883} and ${STATE:-state} take their defaults when empty.
        #expect(report.errors.count == 1, "\(report.errors)")
    }

    @Test func quotedValuesAndMalformedReferences() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let report = try fixture.report("""
            gateway:
              name: "gw-${NOPE}"
              state_dir: ${1BAD}
            upstream:
              host: ${OPEN
            """)
        #expect(report.error(at: "2:13")?.contains("NOPE is not set") == true, "\(report)")
        #expect(report.error(at: "3:14")?.contains("'${1BAD}' is not an environment reference") == true, "\(report)")
        #expect(report.error(at: "5:9")?.contains("has no closing '}'") == true, "\(report)")
    }

    @Test func mappingFilesAreResolvedToo() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        _ = try fixture.write("maps/site.yaml", """
            mappings:
              - name: site
                resource: /s/{device}
                auth: anonymous
                topic: dt/${SITE}/{device}

            """)
        let report = try fixture.report(config("mapping_files: [maps/site.yaml]\n"))
        let issue = try #require(report.errors.first, "\(report)")
        #expect(issue.hasPrefix("5:15: environment variable SITE is not set"), "\(issue)")
        #expect(report.printed.contains("maps/site.yaml:5:15: error: environment variable SITE"), "\(report.printed)")
        let resolved = try fixture.report(config("mapping_files: [maps/site.yaml]\n"), environment: ["SITE": "plant-2"])
        #expect(resolved.config?.mappings.first?.topic.text == "dt/plant-2/{device}", "\(resolved)")
    }
}

@Suite("Configuration: reporting")
struct ConfigReportingTests {
    @Test func warningsComeWithErrorsSortedByLocationAndMarked() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let report = try fixture.report("""
            gateway:
              name: gw-01
              state_dir: state
            upstream:
              host: broker.example
              keep_alive: 10
              tls:
                ca_file: ca.pem
                cert_file: client.pem
                key_file: client.key
                colour: red
            mapping_files: ["none/*.yaml"]

            """)
        let lines = report.printed.split(separator: "\n").map(String.init)
        let path = fixture.directory.appendingPathComponent("gateway.yaml").path
        #expect(lines.count == 3, "\(report.printed)")
        #expect(lines.first?.hasPrefix("\(path):6:15: warning: upstream.keep_alive 10 is outside") == true, "\(lines)")
        #expect(lines.dropFirst().first?.hasPrefix("\(path):11:5: error: unknown key 'colour'") == true, "\(lines)")
        #expect(lines.last?.hasPrefix("\(path):12:17: warning: mapping_files pattern 'none/*.yaml' matches no file") == true, "\(lines)")
    }

    @Test func stateDirectoryAloneIgnoresTheRestOfTheConfiguration() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let broken = try fixture.write("broken.yaml", """
            gateway:
              name: "not a valid name"
              state_dir: ${STATE_ROOT}/gw
            upstream:
              host: ${UNSET_HOST}
              tls: {ca_file: absent.pem}
            mapping_files: [absent.yaml]

            """)
        let directory = try ConfigLoader.stateDirectory(path: broken, environment: ["STATE_ROOT": "/srv"])
        #expect(directory == "/srv/gw")
        #expect(throws: ConfigError.self) { try ConfigLoader.stateDirectory(path: broken, environment: [:]) }
        do {
            _ = try ConfigLoader.stateDirectory(path: broken, environment: [:])
        } catch {
            #expect(error.issues.map(\.location.line) == [3] && error.issues.first?.location.column == 14, "\(error)")
        }
        let relative = try fixture.write("relative.yaml", "gateway:\n  state_dir: state\n")
        #expect(try ConfigLoader.stateDirectory(path: relative) == fixture.directory.appendingPathComponent("state").path)
        let none = try fixture.write("none.yaml", "upstream: {}\n")
        #expect(try ConfigLoader.stateDirectory(path: none) == "/var/lib/iot-gateway")
        let wrong = try fixture.write("wrong.yaml", "gateway:\n  state_dir: [a]\n")
        #expect(throws: ConfigError.self) { try ConfigLoader.stateDirectory(path: wrong) }
    }
}
