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
