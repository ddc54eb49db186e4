import Foundation
import Testing

/// The OpenAPI contract: schemathesis (installed by `IOT_SETUP_CONTRACT=1
/// .ci/setup`) runs against a real gateway with the document
/// `iot-gateway openapi` prints for that gateway's own configuration, and
/// fails on any 5xx, a status, header or content type the document does not
/// list, or a body that breaks its schema.
@Suite("OpenAPI contract")
struct OpenAPIContractTests {
    static let venv = ProcessInfo.processInfo.environment["IOT_SCHEMATHESIS_DIR"] ?? "/var/cache/iot-gateway/schemathesis"

    /// Test-only edits of the generated document: `wait` at most 1 s (the
    /// generated maximum, 120, would make every long-poll schemathesis sends
    /// last up to two minutes) and the registered device's id as each
    /// identity variable's example, so some requests get past 403.
    static let patch = """
        import sys, yaml
        path, device = sys.argv[1], sys.argv[2]
        doc = yaml.safe_load(open(path))
        for item in doc["paths"].values():
            for p in item.get("parameters", []):
                if p["name"] == "device":
                    p["example"] = device
            for key, op in item.items():
                if isinstance(op, dict) and "responses" in op:
                    for p in op.get("parameters", []):
                        if p["name"] == "wait":
                            p["schema"]["maximum"] = 1
        yaml.safe_dump(doc, open(path, "w"), sort_keys=True)
        """

    @Test("schemathesis against the HTTPS ingress and the admin listener: no 5xx, nothing undocumented, every schema kept")
    func schemathesis() async throws {
        let schemathesis = Self.venv + "/bin/schemathesis"
        try #require(FileManager.default.isExecutableFile(atPath: schemathesis),
                     "schemathesis is not installed in \(Self.venv): run IOT_SETUP_CONTRACT=1 .ci/setup")
        let pki = try await DevicePKI.shared()
        // One mapping of each kind (OpenAPITestConfig); schemathesis's
        // refusals would lock its own address out, so lockouts are off there.
        let settings = OpenAPITestConfig.settings(pki: pki)
        try await EndToEnd.run("openapi-contract", settings: settings) { env in
            let service = try await ShadowService.started(broker: env.broker, directory: env.directory)
            let gateway = env.gateway
            let spec = env.directory.file("openapi.yaml")
            let generated = try await ProcessRunner.run(try GatewayBinary.path(), ["openapi", "--config", gateway.configPath, "--output", spec])
            try #require(generated.succeeded, "\(generated.summary)")
            let script = try env.directory.write(Self.patch, to: "patch.py")
            let patched = try await ProcessRunner.run(Self.venv + "/bin/python", [script, spec, SecureSetup.kitchen.id])
            try #require(patched.succeeded, "\(patched.summary)")

            let checks = [
                "not_a_server_error", "status_code_conformance", "content_type_conformance",
                "response_headers_conformance", "response_schema_conformance", "unsupported_method",
                "allow_header_conformance", "missing_required_header", "ignored_auth",
            ].joined(separator: ",")
            // schemathesis keeps a .schemathesis/ cache in its working
            // directory: the test's own, not the checkout.
            let inScratch = ["-C", env.directory.path, schemathesis]
            let common = [
                "run", spec, "--checks", checks, "--max-examples", "15", "--workers", "1", "--seed", "1",
                "--phases", "examples,coverage,fuzzing", "--request-timeout", "10", "--no-shrink",
            ]
            let ingress = try await ProcessRunner.run("/usr/bin/env", inScratch + common + [
                "--url", gateway.httpsURL(""), "--tls-verify", pki.serverCA,
                "-H", "Authorization: Bearer \(SecureSetup.kitchen.token!)", "--exclude-tag", "admin",
            ], environment: ["PATH": "/usr/bin:/bin", "HOME": env.directory.path, "NO_COLOR": "1"], timeout: .seconds(240))
            #expect(ingress.succeeded, "\(Self.findings(ingress))")
            let admin = try await ProcessRunner.run("/usr/bin/env", inScratch + common + [
                "--url", gateway.adminURL(""), "--include-tag", "admin",
            ], environment: ["PATH": "/usr/bin:/bin", "HOME": env.directory.path, "NO_COLOR": "1"], timeout: .seconds(120))
            #expect(admin.succeeded, "\(Self.findings(admin))")
            #expect(gateway.isRunning, "the gateway died under schemathesis")
            await service.stop()
        }
    }

    /// schemathesis's report from its first FAILURES or ERRORS heading on
    /// (the summary's tail alone does not say what failed).
    static func findings(_ result: ProcessResult) -> String {
        let text = result.stdoutText
        guard let start = ["= FAILURES =", "= ERRORS ="].compactMap({ text.range(of: $0)?.lowerBound }).min() else {
            return result.summary
        }
        return "$ \(result.commandLine)\n\(result.status)\n" + String(text[start...].prefix(12_000))
    }
}
