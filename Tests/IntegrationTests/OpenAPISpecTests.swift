import Foundation
import Testing

/// docs/openapi.yaml is what `iot-gateway openapi` prints for the demo's
/// configuration (.ci/local-broker writes it for .ci/demo, with the example
/// mappings in mappings/), so it cannot go stale unnoticed.
///
/// `IOT_OPENAPI_UPDATE=1 swift test --filter OpenAPISpec` rewrites the file
/// instead of comparing.
@Suite("OpenAPI document")
struct OpenAPISpecTests {
    static var committed: URL { GatewayBinary.packageRoot.appendingPathComponent("docs/openapi.yaml") }

    static let header = """
        # The HTTP ingress and admin API of iot-gateway, as OpenAPI 3.1: generated, do not edit.
        # Made by `iot-gateway openapi --config .demo/gateway.yaml` from the configuration
        # .ci/local-broker writes for .ci/demo (listeners 127.0.0.1:8080 and :8443, admin
        # 127.0.0.1:9683, the mappings in mappings/*.yaml). Tests/IntegrationTests/
        # OpenAPISpecTests.swift fails when this file is stale; IOT_OPENAPI_UPDATE=1 with that
        # test rewrites it. Your own gateway's: iot-gateway openapi --config FILE.

        """

    /// The demo's configuration, as .ci/local-broker writes it with its
    /// default ports and name; certificates from the test PKI (only their
    /// validity matters, nothing of them reaches the document).
    static func demoConfiguration(in directory: TemporaryDirectory, certificates: TestCertificates, pki: DevicePKI) throws -> String {
        let path = directory.file("gateway.yaml")
        let mappings = GatewayBinary.packageRoot.appendingPathComponent("mappings").path
        let text = """
            gateway:
              name: gw-local
              state_dir: \(directory.file("state"))
            upstream:
              host: localhost
              port: 8883
              keep_alive: 60
              tls:
                ca_file: \(certificates.caFile)
                cert_file: \(certificates.gateway.certificate)
                key_file: \(certificates.gateway.key)
            devices:
              files: ["\(directory.file("devices"))/*.yaml"]
            coap:
              listen: ["127.0.0.1:5683"]
              dtls:
                listen: ["127.0.0.1:5684"]
                cert_file: \(pki.gatewayServer.certificate)
                key_file: \(pki.gatewayServer.key)
            http:
              listen: ["127.0.0.1:8080"]
              tls:
                listen: ["127.0.0.1:8443"]
                cert_file: \(pki.gatewayServer.certificate)
                key_file: \(pki.gatewayServer.key)
            log:
              level: info
            mapping_files: ["\(mappings)/*.yaml"]

            """
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw HarnessError("cannot write \(path)")
        }
        return path
    }

    @Test("docs/openapi.yaml is what `iot-gateway openapi` prints for the demo configuration")
    func committedDocumentIsCurrent() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try TemporaryDirectory("openapi-doc")
        defer { directory.remove() }
        let config = try Self.demoConfiguration(in: directory, certificates: certificates, pki: try await DevicePKI.shared())
        let output = directory.file("openapi.yaml")
        let result = try await ProcessRunner.run(try GatewayBinary.path(), ["openapi", "--config", config, "--output", output])
        #expect(result.succeeded, "\(result.summary)")
        let generated = Self.header + (try String(contentsOfFile: output, encoding: .utf8))
        // Printed to standard output, it is the same text.
        let printed = try await ProcessRunner.run(try GatewayBinary.path(), ["openapi", "--config", config])
        #expect(Self.header + printed.stdoutText == generated, "stdout and --output differ")

        if ProcessInfo.processInfo.environment["IOT_OPENAPI_UPDATE"] == "1" {
            try Data(generated.utf8).write(to: Self.committed)
            return
        }
        let current = (try? String(contentsOf: Self.committed, encoding: .utf8)) ?? ""
        #expect(current == generated, """
            docs/openapi.yaml is stale: regenerate it with
              IOT_OPENAPI_UPDATE=1 IOT_GATEWAY_BIN=... swift test --skip-build --filter OpenAPISpecTests
            """)
    }

    @Test("openapi: a configuration error is printed as check-config prints it, exit 1; --help names the command")
    func configErrors() async throws {
        let directory = try TemporaryDirectory("openapi-bad")
        defer { directory.remove() }
        let path = directory.file("bad.yaml")
        _ = FileManager.default.createFile(atPath: path, contents: Data("gateway:\n  name: gw\nmappings: 7\n".utf8))
        let openapi = try await ProcessRunner.run(try GatewayBinary.path(), ["openapi", "--config", path])
        let check = try await GatewayProcess.checkConfig(path)
        #expect(openapi.status == .exited(1), "\(openapi.summary)")
        #expect(openapi.stdoutText.isEmpty, "\(openapi.summary)")
        #expect(!openapi.stderrText.isEmpty && openapi.stderrText == check.stderrText, "openapi:\n\(openapi.summary)\ncheck-config:\n\(check.summary)")
    }
}
