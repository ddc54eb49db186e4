import Foundation
import Testing

/// Issue 4, proof 4 (the static half): every AWS IoT Core rule that can be
/// checked before a message exists is refused by the real `iot-gateway
/// check-config` with `FILE:LINE:COLUMN: message` on the offending line
/// (exit 1); the keep-alive clamp is a warning in the same form (exit 0);
/// and each rule's boundary value, or the same line under `profile:
/// generic`, passes — so every refusal is for the rule, not for something
/// else in the file.
@Suite("check-config: AWS IoT Core rules")
struct AWSConfigTests {
    enum Outcome: Sendable {
        /// Exit 1 with a diagnostic on the marked line whose message contains all of these.
        case error([String])
        /// Exit 0, `OK`, and a `warning:` diagnostic on the marked line containing these.
        case warning([String])
        /// Exit 0, `OK`, no diagnostics at all.
        case valid
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var label: String
        var profile = "aws-iot-core"
        var name = "gw-test"
        /// The `mappings:` list; the default is one plain mapping.
        var mappings = Case.plainMapping
        /// More `upstream:` lines.
        var upstream: [String] = []
        /// Replacements in the generated text (`keep_alive` is already in it).
        var replace: [(String, String)] = []
        /// A copy of the gateway key with this mode becomes `tls.key_file`.
        var keyMode: Int? = nil
        /// A password file next to the configuration, `pw.txt`.
        var passwordFile = false
        var outcome: Outcome
        var testDescription: String { label }

        static let plainMapping = """
            - name: plain
              resource: /sensors/{device}
              auth: anonymous
              topic: dt/sensors/{device}

            """

        /// One mapping with `topic` (and optionally `qos`) on marked lines.
        static func mapping(topic: String, resource: String = "/m/{device}", qos: String? = nil, mark: String = "topic") -> String {
            var text = """
                - name: m
                  resource: \(resource)
                  auth: anonymous
                  topic: \(topic)\(mark == "topic" ? "  # <- HERE" : "")

                """
            if let qos { text += "  qos: \(qos)\(mark == "qos" ? "  # <- HERE" : "")\n" }
            return text
        }
    }

    static func pad(_ count: Int) -> String { String(repeating: "p", count: count) }
    /// `dt/{device}/` + padding: with the variable at its shortest (1 byte) the
    /// topic is `total` bytes.
    static func topic(bytes total: Int) -> String { "dt/{device}/" + pad(total - "dt/x/".utf8.count) }

    static let cases: [Case] = [
        // QoS
        Case(label: "QoS 2 under aws-iot-core", mappings: Case.mapping(topic: "dt/{device}", qos: "2", mark: "qos"),
             outcome: .error(["QoS 2", "AWS IoT Core"])),
        Case(label: "QoS 2 under generic is allowed", profile: "generic", mappings: Case.mapping(topic: "dt/{device}", qos: "2", mark: "-"),
             outcome: .valid),
        Case(label: "QoS 1 under aws-iot-core", mappings: Case.mapping(topic: "dt/{device}", qos: "1", mark: "-"), outcome: .valid),

        // Topic length, bytes
        Case(label: "topic template of at least 257 bytes", mappings: Case.mapping(topic: topic(bytes: 257)),
             outcome: .error(["257 bytes", "256"])),
        Case(label: "topic template of 256 bytes at its shortest", mappings: Case.mapping(topic: topic(bytes: 256), mark: "-"),
             outcome: .valid),
        Case(label: "multi-byte literal: 129 × 'é' is 258 bytes", mappings: Case.mapping(topic: "dt/{device}/" + String(repeating: "é", count: 129)),
             outcome: .error(["bytes", "256"])),
        // {gateway} is known when the configuration loads: a template that
        // cannot fit with the configured name can never fit.
        Case(label: "{gateway} of 120 bytes: template of at least 257 bytes", name: String(repeating: "g", count: 120),
             mappings: Case.mapping(topic: "dt/{gateway}/{device}/" + pad(131)), outcome: .error(["257", "256"])),
        Case(label: "{gateway} of 120 bytes: template of 256 bytes at its shortest", name: String(repeating: "g", count: 120),
             mappings: Case.mapping(topic: "dt/{gateway}/{device}/" + pad(130), mark: "-"), outcome: .valid),
        Case(label: "a 257-byte template under generic is allowed", profile: "generic", mappings: Case.mapping(topic: topic(bytes: 257), mark: "-"),
             outcome: .valid),

        // Topic depth, slashes
        Case(label: "topic template with 8 slashes", mappings: Case.mapping(topic: "dt/a/b/c/d/e/f/g/{device}"),
             outcome: .error(["8", "'/'", "7"])),
        Case(label: "topic template with 7 slashes", mappings: Case.mapping(topic: "dt/a/b/c/d/e/f/{device}", mark: "-"), outcome: .valid),
        // A {var*} is one level at its shortest: 7 slashes can fit; deeper
        // values are refused per message (AWSProfileTests).
        Case(label: "{var*} after 7 slashes can fit (one level at its shortest)",
             mappings: Case.mapping(topic: "dt/a/b/c/d/e/f/{rest*}", resource: "/m/{rest*}", mark: "-"), outcome: .valid),
        Case(label: "{var*} after 8 slashes can never fit",
             mappings: Case.mapping(topic: "dt/a/b/c/d/e/f/g/{rest*}", resource: "/m/{rest*}"), outcome: .error(["'/'"])),
        Case(label: "8 slashes under generic are allowed", profile: "generic", mappings: Case.mapping(topic: "dt/a/b/c/d/e/f/g/{device}", mark: "-"),
             outcome: .valid),

        // Basic Ingest: the prefix does not count
        Case(label: "Basic Ingest with 7 slashes after $aws/rules/<rule>/", mappings: Case.mapping(topic: "$aws/rules/my_rule/a/b/c/d/e/f/g/{device}", mark: "-"),
             outcome: .valid),
        Case(label: "Basic Ingest with 8 slashes after $aws/rules/<rule>/", mappings: Case.mapping(topic: "$aws/rules/my_rule/a/b/c/d/e/f/g/h/{device}"),
             outcome: .error(["'/'", "$aws/rules"])),
        Case(label: "Basic Ingest rule name with '-'", mappings: Case.mapping(topic: "$aws/rules/my-rule/{device}"),
             outcome: .error(["rule name"])),
        Case(label: "Basic Ingest without a topic after the rule", mappings: Case.mapping(topic: "$aws/rules/my_rule", resource: "/m"),
             outcome: .error(["Basic Ingest"])),

        // Other $ topics
        Case(label: "$SYS topic", mappings: Case.mapping(topic: "$SYS/{device}"), outcome: .error(["$"])),
        Case(label: "$aws topic that is neither Basic Ingest nor shadow", mappings: Case.mapping(topic: "$aws/events/{device}"),
             outcome: .error(["$"])),
        Case(label: "shadow topic with an unknown action", mappings: Case.mapping(topic: "$aws/things/{device}/shadow/replace"),
             outcome: .error(["shadow"])),
        Case(label: "shadow action from a variable", mappings: Case.mapping(topic: "$aws/things/{device}/shadow/{action}", resource: "/m/{device}/{action}"),
             outcome: .error(["shadow", "action"])),
        Case(label: "shadow update, get, delete and named shadow topics",
             mappings: """
                 - name: update
                   resource: /u/{thing}
                   auth: anonymous
                   topic: $aws/things/{thing}/shadow/update
                 - name: get
                   resource: /g/{thing}
                   auth: anonymous
                   topic: $aws/things/{thing}/shadow/get
                 - name: delete
                   resource: /d/{thing}
                   auth: anonymous
                   topic: $aws/things/{thing}/shadow/delete
                 - name: named
                   resource: /n/{thing}/{shadow}
                   auth: anonymous
                   topic: $aws/things/{thing}/shadow/name/{shadow}/update

                 """,
             outcome: .valid),

        // Client ID: ≤ 128 bytes including the connection suffix, no leading '$'
        Case(label: "client_id of 129 bytes", upstream: ["client_id: \(pad(129))  # <- HERE"], outcome: .error(["129 bytes", "128"])),
        Case(label: "client_id of 128 bytes", upstream: ["client_id: \(pad(128))"], outcome: .valid),
        Case(label: "client_id of 126 bytes with connections: 10 (suffix -10: 129 bytes)",
             upstream: ["client_id: \(pad(126))  # <- HERE", "connections: 10"], outcome: .error(["-10", "129 bytes"])),
        Case(label: "client_id of 126 bytes with connections: 9 (suffix -9: 128 bytes)",
             upstream: ["client_id: \(pad(126))", "connections: 9"], outcome: .valid),
        Case(label: "client_id starting with '$'", upstream: ["client_id: $gw  # <- HERE"], outcome: .error(["$"])),
        Case(label: "client_id starting with '$' under generic is allowed", profile: "generic", upstream: ["client_id: $gw"], outcome: .valid),

        // Keep-alive: clamped with a warning, not an error
        Case(label: "keep_alive 10: warning, clamped to 30", replace: [("  keep_alive: 30\n", "  keep_alive: 10  # <- HERE\n")],
             outcome: .warning(["keep_alive", "10", "30"])),
        Case(label: "keep_alive 5000: warning, clamped to 1200", replace: [("  keep_alive: 30\n", "  keep_alive: 5000  # <- HERE\n")],
             outcome: .warning(["keep_alive", "5000", "1200"])),
        Case(label: "keep_alive 1200: no warning", replace: [("  keep_alive: 30\n", "  keep_alive: 1200\n")], outcome: .valid),
        Case(label: "keep_alive 10 under generic: no warning", profile: "generic",
             replace: [("  keep_alive: 30\n", "  keep_alive: 10\n")], outcome: .valid),

        // Private key readable by everyone
        Case(label: "key_file mode 0644", keyMode: 0o644, outcome: .error(["key_file", "readable", "644"])),
        Case(label: "key_file mode 0640", keyMode: 0o640, outcome: .valid),

        // Username / password
        Case(label: "password_file without username", upstream: ["password_file: pw.txt  # <- HERE"], passwordFile: true,
             outcome: .error(["password_file", "username"])),
        Case(label: "password_file with username", upstream: ["username: gw", "password_file: pw.txt"], passwordFile: true,
             outcome: .valid),
        Case(label: "password_file that does not exist", upstream: ["username: gw", "password_file: missing.txt  # <- HERE"],
             outcome: .error(["password_file", "missing.txt"])),

        // Quota settings
        Case(label: "max_inflight above AWS's 100", replace: [("  max_inflight: 20\n", "  max_inflight: 101  # <- HERE\n")],
             outcome: .error(["max_inflight"])),
        Case(label: "publish_rate 0", upstream: ["publish_rate: 0  # <- HERE"], outcome: .error(["publish_rate"])),
        Case(label: "publish_rate and byte_rate set, and unlimited",
             upstream: ["publish_rate: unlimited", "byte_rate: 256KiB", "connections: 3"], outcome: .valid),
        Case(label: "unknown profile", replace: [("  profile: aws-iot-core\n", "  profile: aws  # <- HERE\n")],
             outcome: .error(["profile"])),
        Case(label: "empty tls.alpn", replace: [("    key_file: ", "    alpn: \"\"  # <- HERE\n    key_file: ")],
             outcome: .error(["alpn"])),
    ]

    static func run(_ testCase: Case) async throws -> (ProcessResult, configPath: String, text: String) {
        let directory = try TemporaryDirectory("aws-check")
        defer { directory.remove() }
        let certificates = try await TestCertificates.shared()
        var settings = GatewaySettings()
        settings.profile = testCase.profile
        settings.name = testCase.name
        settings.mappings = testCase.mappings
        settings.upstreamExtra = testCase.upstream
        var text = settings.yaml(
            stateDirectory: try directory.subdirectory("state"), brokerPort: 8883,
            coapPort: 5683, httpPort: 8080, adminPort: 9683, certificates: certificates
        )
        for (from, to) in testCase.replace {
            guard text.contains(from) else { throw HarnessError("the generated config has no '\(from)':\n\(text)") }
            text = text.replacingOccurrences(of: from, with: to)
        }
        if let mode = testCase.keyMode {
            let copy = directory.file("gateway-key.pem")
            try FileManager.default.copyItem(atPath: certificates.gateway.key, toPath: copy)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: copy)
            text = text.replacingOccurrences(of: "key_file: \(certificates.gateway.key)\n", with: "key_file: \(copy)  # <- HERE\n")
        }
        if testCase.passwordFile { _ = try directory.write("s3cret\n", to: "pw.txt") }
        let path = try directory.write(text, to: "gateway.yaml")
        return (try await GatewayProcess.checkConfig(path), path, text)
    }

    @Test("each AWS rule: refused (or warned) on its own line, its boundary accepted", arguments: cases)
    func rule(_ testCase: Case) async throws {
        let (result, configPath, text) = try await Self.run(testCase)
        let (diagnostics, other) = CheckConfigTests.diagnostics(result.stderrText)
        let context = "\(result.summary)\n--- gateway.yaml ---\n\(text)"
        #expect(!result.timedOut, "\(context)")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let marked = lines.firstIndex { $0.contains("# <- HERE") }.map { $0 + 1 }
        let file = URL(fileURLWithPath: configPath).lastPathComponent

        switch testCase.outcome {
        case .valid:
            #expect(result.status == .exited(0), "\(context)")
            #expect(result.stdoutText.contains("OK"), "\(context)")
            #expect(diagnostics.isEmpty && other.isEmpty, "no diagnostics expected: \(context)")

        case .error(let words):
            let line = try #require(marked, "no '# <- HERE' marker in \(text)")
            #expect(result.status == .exited(1), "\(context)")
            #expect(other.isEmpty, "stderr lines not in FILE:LINE:COLUMN: message form: \(other)")
            let hit = diagnostics.first {
                URL(fileURLWithPath: $0.file).lastPathComponent == file && $0.line == line && $0.column >= 1
            }
            #expect(hit != nil, "want a diagnostic at \(file):\(line), got \(diagnostics)\n\(context)")
            if let hit {
                #expect(!hit.message.hasPrefix("warning:"), "an error, not a warning: \(hit)")
                for word in words {
                    #expect(hit.message.contains(word), "'\(word)' not in: \(hit)")
                }
            }

        case .warning(let words):
            let line = try #require(marked, "no '# <- HERE' marker in \(text)")
            #expect(result.status == .exited(0), "a warning must not fail check-config: \(context)")
            #expect(result.stdoutText.contains("OK"), "\(context)")
            #expect(other.isEmpty, "stderr lines not in FILE:LINE:COLUMN: message form: \(other)")
            #expect(diagnostics.count == 1, "\(diagnostics)")
            let hit = diagnostics.first { $0.line == line && URL(fileURLWithPath: $0.file).lastPathComponent == file }
            #expect(hit != nil, "want a warning at \(file):\(line), got \(diagnostics)")
            if let hit {
                #expect(hit.message.hasPrefix("warning: "), "\(hit)")
                for word in words {
                    #expect(hit.message.contains(word), "'\(word)' not in: \(hit)")
                }
            }
        }
    }

    @Test("client ID from a long gateway.name plus the connection suffix is refused, pointing into the upstream section")
    func gatewayNameClientID() async throws {
        // gateway.name allows 128 characters; with connections: 2 the IDs are <name>-1 and <name>-2.
        let testCase = Case(label: "long name", name: String(repeating: "g", count: 127), upstream: ["connections: 2"], outcome: .valid)
        let (result, _, text) = try await Self.run(testCase)
        let (diagnostics, _) = CheckConfigTests.diagnostics(result.stderrText)
        #expect(result.status == .exited(1), "\(result.summary)")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let upstreamStart = try #require(lines.firstIndex { $0 == "upstream:" }.map { $0 + 1 })
        let upstreamEnd = lines[upstreamStart...].firstIndex { !$0.hasPrefix(" ") && !$0.isEmpty }.map { $0 } ?? lines.count
        let hit = diagnostics.first { $0.message.contains("129 bytes") }
        #expect(hit != nil, "\(diagnostics)")
        if let hit {
            #expect((upstreamStart...upstreamEnd).contains(hit.line), "line \(hit.line) is outside upstream: (\(upstreamStart)…\(upstreamEnd))\n\(text)")
            print("long gateway.name: \(hit)")
        }
    }
}
