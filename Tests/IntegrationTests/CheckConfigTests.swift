import Foundation
import Testing

/// `iot-gateway check-config`: the shipped examples pass; broken files are
/// refused with `FILE:LINE:COLUMN: message` pointing at the right line.
@Suite("check-config")
struct CheckConfigTests {
    struct Diagnostic: CustomStringConvertible {
        var file: String
        var line: Int
        var column: Int
        var message: String
        var description: String { "\(file):\(line):\(column): \(message)" }
    }

    /// Parses stderr; lines not in the `FILE:LINE:COLUMN: message` form are
    /// returned separately.
    static func diagnostics(_ stderr: String) -> (parsed: [Diagnostic], other: [String]) {
        var parsed: [Diagnostic] = [], other: [String] = []
        for line in stderr.split(separator: "\n").map(String.init) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            if let match = line.wholeMatch(of: /(.+?):(\d+):(\d+): (.+)/), let row = Int(match.2), let column = Int(match.3) {
                parsed.append(Diagnostic(file: String(match.1), line: row, column: column, message: String(match.4)))
            } else {
                other.append(line)
            }
        }
        return (parsed, other)
    }

    static let repoMappings = GatewayBinary.packageRoot.appendingPathComponent("mappings")

    static func exampleMappingFiles() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: repoMappings.path)) ?? []
        return files.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
    }

    /// A valid configuration for the test PKI, with `mappings` as given.
    static func config(in directory: TemporaryDirectory, mappings: String = StandardMappings.yaml, extra: String = "") async throws -> String {
        var settings = GatewaySettings()
        // check-config is about what operators ship: the default profile.
        settings.profile = "aws-iot-core"
        settings.mappings = mappings
        settings.extraYAML = extra
        return settings.yaml(
            stateDirectory: try directory.subdirectory("state"), brokerPort: 8883,
            coapPort: 5683, httpPort: 8080, adminPort: 9683, certificates: try await TestCertificates.shared()
        )
    }

    @Test("the base configuration the tests use is itself valid")
    func baseConfigIsValid() async throws {
        let directory = try TemporaryDirectory("check-base")
        defer { directory.remove() }
        let path = try directory.write(try await Self.config(in: directory), to: "gateway.yaml")
        let result = try await GatewayProcess.checkConfig(path)
        #expect(result.succeeded, "\(result.summary)")
    }

    @Test("every example mapping file in mappings/ passes, alone and all together")
    func exampleMappings() async throws {
        let files = Self.exampleMappingFiles()
        #expect(!files.isEmpty, "no example mapping files in \(Self.repoMappings.path)")
        let directory = try TemporaryDirectory("check-examples")
        defer { directory.remove() }
        for file in files {
            let mappingPath = Self.repoMappings.appendingPathComponent(file).path
            let yaml = try await Self.config(in: directory, mappings: "", extra: "mapping_files: [\"\(mappingPath)\"]")
            let path = try directory.write(yaml, to: "gateway-\(file)")
            let result = try await GatewayProcess.checkConfig(path)
            #expect(result.succeeded, "mappings/\(file) through mapping_files:\n\(result.summary)")
        }
        let glob = Self.repoMappings.appendingPathComponent("*.yaml").path
        let all = try directory.write(try await Self.config(in: directory, mappings: "", extra: "mapping_files: [\"\(glob)\"]"),
                                      to: "gateway-all.yaml")
        let result = try await GatewayProcess.checkConfig(all)
        #expect(result.succeeded, "all of mappings/*.yaml together:\n\(result.summary)")
    }

    @Test("the example systemd/gateway.yaml passes, with its certificate files in place")
    func exampleGatewayConfig() async throws {
        let example = GatewayBinary.packageRoot.appendingPathComponent("systemd/gateway.yaml").path
        var text = try #require(FileManager.default.contents(atPath: example).map { String(decoding: $0, as: UTF8.self) },
                                "missing \(example)")
        let directory = try TemporaryDirectory("check-example-config")
        defer { directory.remove() }
        let certificates = try await TestCertificates.shared()
        // Put test certificates where it expects its files; absolute paths
        // (which would not exist here) are redirected into the temp dir.
        let sources = ["ca_file": certificates.caFile, "cert_file": certificates.gateway.certificate, "key_file": certificates.gateway.key]
        for (key, source) in sources {
            // Every occurrence (upstream.tls, devices, coap.dtls, http.tls), last first so ranges stay valid.
            let matches = text.matches(of: try Regex("\(key):\\s*([^\\s#]+)"))
            if matches.isEmpty { Issue.record("systemd/gateway.yaml has no \(key)") }
            for match in matches.reversed() {
                var value = String(match.output[1].substring ?? "")
                if value.hasPrefix("/") {
                    let replacement = directory.file("certs/" + URL(fileURLWithPath: value).lastPathComponent)
                    text.replaceSubrange(match.range, with: "\(key): \(replacement)")
                    value = replacement
                } else {
                    value = directory.file(value)
                }
                try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: value).deletingLastPathComponent().path,
                                                        withIntermediateDirectories: true)
                if !FileManager.default.fileExists(atPath: value) {
                    try FileManager.default.copyItem(atPath: source, toPath: value)
                }
            }
        }
        if let match = text.firstMatch(of: /state_dir:\s*([^\s#]+)/) {
            text.replaceSubrange(match.range, with: "state_dir: \(try directory.subdirectory("state"))")
        }
        // Its mapping_files are relative to the config: give it the repo's mappings.
        try FileManager.default.copyItem(atPath: Self.repoMappings.path, toPath: directory.file("mappings"))
        let path = try directory.write(text, to: "gateway.yaml")
        let result = try await GatewayProcess.checkConfig(path)
        #expect(result.succeeded, "systemd/gateway.yaml (certificates and state_dir redirected):\n\(result.summary)\n--- config ---\n\(text)")
    }

    /// A broken configuration: the line holding `# <- ERROR` is where the
    /// diagnostic must point.
    struct Broken: Sendable, CustomTestStringConvertible {
        var label: String
        var mappings: String = StandardMappings.yaml
        var extra: String = ""
        /// A separate mapping file (referenced through mapping_files) that holds the error.
        var mappingFile: String? = nil
        /// A text replacement in the generated configuration.
        var replace: (String, String)? = nil
        var testDescription: String { label }
    }

    /// One valid mapping plus `line`, the line the diagnostic must point at.
    static func mapping(with line: String) -> String {
        """
        - name: temperature
          resource: /sensors/{device}/temperature
          auth: anonymous
          topic: it/{device}
          \(line)  # <- ERROR

        """
    }

    static let broken: [Broken] = [
        Broken(label: "unknown top-level key", extra: "telemetry: yes  # <- ERROR"),
        Broken(label: "unknown key in a section", replace: ("  keep_alive: 30\n", "  keep_alive: 30\n  keepalive: 30  # <- ERROR\n")),
        Broken(label: "wrong type (upstream.port as text)", replace: ("  port: 8883\n", "  port: eight  # <- ERROR\n")),
        Broken(label: "wrong type (coap.listen not a list of addresses)", replace: ("  listen: [\"127.0.0.1:5683\"]\n", "  listen: {a: 1}  # <- ERROR\n")),
        Broken(label: "unknown key in a mapping", mappings: mapping(with: "colour: red")),
        Broken(label: "qos 2", mappings: mapping(with: "qos: 2")),
        Broken(label: "wrong type (qos as text)", mappings: mapping(with: "qos: high")),
        Broken(label: "wrong type (retain as a list)", mappings: mapping(with: "retain: [true]")),
        Broken(label: "duplicate mapping name", mappings: """
            - name: temperature
              resource: /sensors/{device}/temperature
              auth: anonymous
              topic: it/{device}/t
            - name: temperature  # <- ERROR
              resource: /other/{device}/temperature
              auth: anonymous
              topic: it/{device}/o

            """),
        Broken(label: "topic uses a variable the resource does not define", mappings: """
            - name: temperature
              resource: /sensors/{device}/temperature
              auth: anonymous
              topic: it/{room}/temperature  # <- ERROR

            """),
        Broken(label: "unknown payload mode", mappings: mapping(with: "payload: xml")),
        Broken(label: "error inside a mapping file", mappings: "", mappingFile: """
            mappings:
              - name: from-file
                resource: /file/{device}
                auth: anonymous
                topic: it/file/{device}
                qos: 2  # <- ERROR

            """),
        Broken(label: "duplicate name across inline and file", mappings: """
            - name: shared
              resource: /a/{device}
              auth: anonymous
              topic: it/a/{device}

            """, mappingFile: """
            mappings:
              - name: shared  # <- ERROR
                resource: /b/{device}
                auth: anonymous
                topic: it/b/{device}

            """),
    ]

    @Test("broken configurations are refused with FILE:LINE:COLUMN pointing at the problem", arguments: broken)
    func refused(_ broken: Broken) async throws {
        let directory = try TemporaryDirectory("check-broken")
        defer { directory.remove() }
        var extra = broken.extra
        var mappingPath: String?
        if let mappingFile = broken.mappingFile {
            mappingPath = try directory.write(mappingFile, to: "extra-mappings.yaml")
            extra += "\nmapping_files: [\"extra-mappings.yaml\"]\n"
        }
        var text = try await Self.config(in: directory, mappings: broken.mappings, extra: extra)
        if let (from, to) = broken.replace {
            #expect(text.contains(from), "the base config has no '\(from)'")
            text = text.replacingOccurrences(of: from, with: to)
        }
        let configPath = try directory.write(text, to: "gateway.yaml")

        // Where the error is: the marked line of the config or mapping file.
        let (errorFile, errorText) = broken.mappingFile.map { (mappingPath!, $0) } ?? (configPath, text)
        let lines = errorText.split(separator: "\n", omittingEmptySubsequences: false)
        let expectedLine = try #require(lines.firstIndex { $0.contains("# <- ERROR") }.map { $0 + 1 })

        let result = try await GatewayProcess.checkConfig(configPath)
        #expect(result.status != .exited(0) && !result.timedOut, "accepted:\n\(result.summary)\n--- file ---\n\(errorText)")
        let (diagnostics, other) = Self.diagnostics(result.stderrText)
        #expect(other.isEmpty, "stderr lines not in FILE:LINE:COLUMN: message form: \(other)")
        let hit = diagnostics.contains {
            URL(fileURLWithPath: $0.file).lastPathComponent == URL(fileURLWithPath: errorFile).lastPathComponent
                && $0.line == expectedLine && $0.column >= 1 && !$0.message.isEmpty
        }
        #expect(hit, "want \(URL(fileURLWithPath: errorFile).lastPathComponent):\(expectedLine), got \(diagnostics)\n--- file ---\n\(errorText)")
    }

    @Test("iot-gateway --version prints a version")
    func version() async throws {
        let result = try await ProcessRunner.run(try GatewayBinary.path(), ["--version"], timeout: .seconds(15))
        #expect(result.succeeded, "\(result.summary)")
        #expect(result.stdoutText.contains(/\d+\.\d+/), "no version number: \(result.summary)")
    }
}

/// The checks that span sections, through the real binary: each case's
/// exact `FILE:LINE:COLUMN`, its mark (`error:` / `warning:`) and exit status.
extension CheckConfigTests {
    /// Where `needle` is in `text`: 1-based line and column of its first
    /// occurrence on the line holding `lineMarker` (or anywhere).
    static func position(of needle: String, onLineWith lineMarker: String? = nil, in text: String) throws -> (line: Int, column: Int) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() where lineMarker.map(line.contains) ?? true {
            if let range = line.range(of: needle) {
                return (index + 1, line.distance(from: line.startIndex, to: range.lowerBound) + 1)
            }
        }
        throw HarnessError("'\(needle)' not found in:\n\(text)")
    }

    /// Writes `text` as gateway.yaml and runs check-config on it.
    static func check(_ text: String, in directory: TemporaryDirectory, environment: [String: String]? = nil) async throws -> (ProcessResult, String) {
        let path = try directory.write(text, to: "gateway.yaml")
        let result = try await ProcessRunner.run(try GatewayBinary.path(), ["check-config", "--config", path], environment: environment, timeout: .seconds(30))
        return (result, path)
    }

    /// The one stderr line at `place`, which must say `kind` first.
    static func line(at place: (line: Int, column: Int), _ kind: String, in result: ProcessResult, path: String) -> String? {
        result.stderrText.split(separator: "\n").map(String.init).first { $0.hasPrefix("\(path):\(place.line):\(place.column): \(kind): ") }
    }

    @Test("listeners: HTTP and admin on one address and port, plain CoAP and DTLS overlapping through [::]; [::] next to 0.0.0.0 on TCP is fine")
    func listenerConflicts() async throws {
        let directory = try TemporaryDirectory("check-listeners")
        defer { directory.remove() }
        var text = try await Self.config(in: directory)
        text = text.replacingOccurrences(of: "admin:\n  listen: [\"127.0.0.1:9683\"]\n", with: "admin:\n  listen: [\"127.0.0.1:8080\"]\n")
        text = text.replacingOccurrences(of: "coap:\n  listen: [\"127.0.0.1:5683\"]\n", with: "coap:\n  listen: [\"127.0.0.1:5683\"]\n  dtls:\n    listen: [\"[::]:5683\"]\n")
        let (result, path) = try await Self.check(text, in: directory)
        #expect(result.status == .exited(1), "\(result.summary)")
        let httpAt = try Self.position(of: "\"127.0.0.1:8080\"", onLineWith: "listen", in: text)
        let adminLine = try Self.position(of: "admin:", in: text).line + 1
        let http = Self.line(at: httpAt, "error", in: result, path: path)
        #expect(http?.contains("http.listen 127.0.0.1:8080 and admin.listen 127.0.0.1:8080") == true, "\(result.summary)\n\(text)")
        #expect(http?.contains("both take TCP port 8080 on the same address") == true && http?.contains("another port") == true, "\(result.summary)")
        #expect(http?.contains("(\(path):\(adminLine))") == true, "names the admin line: \(result.summary)")
        let dtlsAt = try Self.position(of: "\"[::]:5683\"", in: text)
        let dtls = Self.line(at: dtlsAt, "error", in: result, path: path)
        #expect(dtls?.contains("coap.dtls.listen [::]:5683 and coap.listen 127.0.0.1:5683") == true && dtls?.contains("UDP port 5683") == true,
                "\(result.summary)\n\(text)")
        #expect(result.stderrText.split(separator: "\n").count == 2, "exactly these two: \(result.summary)")

        var fine = try await Self.config(in: directory)
        fine = fine.replacingOccurrences(of: "http:\n  listen: [\"127.0.0.1:8080\"]\n", with: "http:\n  listen: [\"127.0.0.1:8080\", \"[::1]:8080\"]\n")
        fine = fine.replacingOccurrences(of: "coap:\n  listen: [\"127.0.0.1:5683\"]\n", with: "coap:\n  listen: [\"127.0.0.1:8080\", \"127.0.0.1:5683\", \"[::1]:5683\"]\n")
        let (accepted, _) = try await Self.check(fine, in: directory)
        #expect(accepted.succeeded && accepted.stderrText.isEmpty, "TCP next to UDP, and IPv4 next to IPv6, do not conflict: \(accepted.summary)\n\(fine)")
    }

    @Test("certificate and key files: a key as the certificate, a key that is not the certificate's, under 30 days left (a warning, shown with an error elsewhere)")
    func certificateFiles() async throws {
        let directory = try TemporaryDirectory("check-certificates")
        defer { directory.remove() }
        let certificates = try await TestCertificates.shared()
        let base = try await Self.config(in: directory)
        func privateCopy(_ source: String, _ name: String) throws -> String {
            let copy = directory.file(name)
            try FileManager.default.copyItem(atPath: source, toPath: copy)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: copy)
            return copy
        }

        // The gateway's key named as its certificate.
        let keyAsCertificate = base.replacingOccurrences(of: "cert_file: \(certificates.gateway.certificate)", with: "cert_file: \(certificates.gateway.key)")
        let (wrongKind, path) = try await Self.check(keyAsCertificate, in: directory)
        #expect(wrongKind.status == .exited(1), "\(wrongKind.summary)")
        let certAt = try Self.position(of: certificates.gateway.key, onLineWith: "cert_file", in: keyAsCertificate)
        let wrong = Self.line(at: certAt, "error", in: wrongKind, path: path)
        #expect(wrong?.contains("upstream.tls.cert_file: '\(certificates.gateway.key)' holds a PRIVATE KEY block where a certificate belongs") == true,
                "\(wrongKind.summary)")

        // Another key (the subscriber's, made private) for the gateway's certificate.
        let otherKey = try privateCopy(certificates.subscriber.key, "other.key")
        let mismatched = base.replacingOccurrences(of: "key_file: \(certificates.gateway.key)", with: "key_file: \(otherKey)")
        let (mismatch, _) = try await Self.check(mismatched, in: directory)
        #expect(mismatch.status == .exited(1), "\(mismatch.summary)")
        let keyAt = try Self.position(of: otherKey, onLineWith: "key_file", in: mismatched)
        let certLine = try Self.position(of: "cert_file", in: mismatched).line
        let notItsKey = Self.line(at: keyAt, "error", in: mismatch, path: path)
        #expect(notItsKey?.contains("is not the private key of the certificate in upstream.tls.cert_file (\(path):\(certLine))") == true, "\(mismatch.summary)")
        #expect(mismatch.stderrText.split(separator: "\n").count == 1, "\(mismatch.summary)")

        // A certificate with 10 days left: a warning with its date, exit 0 ...
        let ca = OpenSSLPKI.Pair(certificate: certificates.caFile, key: (certificates.caFile as NSString).deletingPathExtension + ".key")
        let short = try await OpenSSLPKI.issue("short", commonName: "gw-short", by: ca, extensions: "extendedKeyUsage = clientAuth", days: 10, in: directory)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: short.key)
        let expiring = base
            .replacingOccurrences(of: "cert_file: \(certificates.gateway.certificate)", with: "cert_file: \(short.certificate)")
            .replacingOccurrences(of: "key_file: \(certificates.gateway.key)", with: "key_file: \(short.key)")
        let (soon, _) = try await Self.check(expiring, in: directory)
        #expect(soon.status == .exited(0) && soon.stdoutText.contains("OK"), "\(soon.summary)")
        let shortAt = try Self.position(of: short.certificate, onLineWith: "cert_file", in: expiring)
        let warning = Self.line(at: shortAt, "warning", in: soon, path: path)
        #expect(warning?.contains("the certificate 'CN=gw-short' expires on ") == true && warning?.contains(" UTC, in under 30 days") == true, "\(soon.summary)")

        // ... and shown, in line order, when another line has an error.
        let both = expiring.replacingOccurrences(of: "  keep_alive: 30\n", with: "  keep_alive: 30\n  keepalive: 30\n")
        let (withError, _) = try await Self.check(both, in: directory)
        #expect(withError.status == .exited(1), "\(withError.summary)")
        let lines = withError.stderrText.split(separator: "\n").map(String.init)
        let keyTypo = try Self.position(of: "keepalive:", in: both)
        let shortNow = try Self.position(of: short.certificate, onLineWith: "cert_file", in: both)
        #expect(lines.count == 2, "\(withError.summary)")
        #expect(lines.first?.hasPrefix("\(path):\(keyTypo.line):\(keyTypo.column): error: unknown key 'keepalive'") == true, "\(withError.summary)")
        #expect(lines.last?.hasPrefix("\(path):\(shortNow.line):\(shortNow.column): warning: upstream.tls.cert_file:") == true, "\(withError.summary)")
        // run refuses the same file with the same lines, before opening anything.
        let run = try await ProcessRunner.run(try GatewayBinary.path(), ["run", "--config", path], timeout: .seconds(30))
        #expect(run.status == .exited(1), "\(run.summary)")
        #expect(run.stderrText == withError.stderrText, "\(run.summary)\n\(withError.summary)")
    }

    @Test("a mapping shadowed by an earlier {rest*} mapping is refused at its resource, naming the earlier one")
    func shadowedMapping() async throws {
        let directory = try TemporaryDirectory("check-shadowed")
        defer { directory.remove() }
        let mappings = """
            - name: everything
              resource: /raw/{rest*}
              auth: anonymous
              topic: dt/raw
            - name: kitchen
              resource: /raw/kitchen/{device}
              auth: anonymous
              topic: dt/kitchen/{device}

            """
        let text = try await Self.config(in: directory, mappings: mappings)
        let (result, path) = try await Self.check(text, in: directory)
        #expect(result.status == .exited(1), "\(result.summary)")
        let at = try Self.position(of: "/raw/kitchen/{device}", in: text)
        let earlier = try Self.position(of: "name: everything", in: text)
        let line = Self.line(at: at, "error", in: result, path: path)
        #expect(line?.contains("mapping 'kitchen' can never match") == true && line?.contains("'everything' (\(path):\(earlier.line))") == true,
                "\(result.summary)\n\(text)")
    }

    @Test("environment references: resolved from the environment; an unset one is an error at its $; the config found through $IOT_GATEWAY_CONFIG")
    func environmentReferences() async throws {
        let directory = try TemporaryDirectory("check-environment")
        defer { directory.remove() }
        let text = try await Self.config(in: directory)
            .replacingOccurrences(of: "  name: gw-test\n", with: "  name: ${GATEWAY_NAME}\n")
            .replacingOccurrences(of: "  host: localhost\n", with: "  host: \"${BROKER_HOST:-localhost}\"\n")
        let (unset, path) = try await Self.check(text, in: directory)
        #expect(unset.status == .exited(1), "\(unset.summary)")
        let at = try Self.position(of: "${GATEWAY_NAME}", in: text)
        #expect(Self.line(at: at, "error", in: unset, path: path)?.contains("environment variable GATEWAY_NAME is not set") == true, "\(unset.summary)")
        #expect(unset.stderrText.split(separator: "\n").count == 1, "the default covers BROKER_HOST: \(unset.summary)")

        let (set, _) = try await Self.check(text, in: directory, environment: ["GATEWAY_NAME": "edge-42"])
        #expect(set.succeeded, "\(set.summary)")

        let viaEnvironment = try await ProcessRunner.run(
            try GatewayBinary.path(), ["check-config"],
            environment: ["IOT_GATEWAY_CONFIG": path, "GATEWAY_NAME": "edge-42"], timeout: .seconds(30)
        )
        #expect(viaEnvironment.succeeded && viaEnvironment.stdoutText.hasPrefix("\(path): OK"), "\(viaEnvironment.summary)")
        let missing = directory.file("absent.yaml")
        let named = try await ProcessRunner.run(
            try GatewayBinary.path(), ["check-config"], environment: ["IOT_GATEWAY_CONFIG": missing], timeout: .seconds(30)
        )
        #expect(named.status == .exited(1), "\(named.summary)")
        #expect(named.stderrText == "\(missing):1:1: error: cannot read file: No such file or directory (named by $IOT_GATEWAY_CONFIG; --config FILE names another)\n",
                "\(named.summary)")
        let help = try await ProcessRunner.run(try GatewayBinary.path(), ["check-config", "--help"], timeout: .seconds(30))
        let flat = help.stdoutText.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(flat.contains("Default: $IOT_GATEWAY_CONFIG if set, else /etc/iot-gateway/gateway.yaml"), "\(help.summary)")
    }
}

/// One configuration for a fleet, through a real gateway and broker.
@Suite("environment references in a running gateway")
struct EnvironmentReferenceRunTests {
    @Test("gateway.name and a topic part come from the gateway's environment: {gateway} in the delivered topic is the resolved name")
    func resolvedNameReachesTheBroker() async throws {
        var settings = GatewaySettings()
        settings.name = "${GATEWAY_NAME}"
        settings.mappings = """
            - name: fleet
              resource: /fleet/{device}
              auth: anonymous
              topic: dt/{gateway}/${SITE:-lab}/{device}
              qos: 1

            """
        try await EndToEnd.run("env-fleet", settings: settings, gatewayEnvironment: { _ in ["GATEWAY_NAME": "edge-42", "SITE": "plant-2"] }) { env in
            let response = try await HTTP.post(env.gateway.httpURL("/fleet/d1"), body: Array("{\"t\":21}".utf8), contentType: "application/json")
            #expect(response.status == 202, "\(response)")
            let messages = try await env.subscriber.waitUntil(timeout: .seconds(30), "the fleet message") { messages in
                messages.contains { $0.topic.hasPrefix("dt/") }
            }
            #expect(messages.contains { $0.topic == "dt/edge-42/plant-2/d1" && $0.text == "{\"t\":21}" }, "\(messages)")
        }
    }
}
