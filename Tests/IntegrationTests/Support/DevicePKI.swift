import Foundation
import GatewayCore

/// Certificates for the device side of the gateway, made with `openssl`
/// once per test run: a device CA and certificates it signs for devices, a
/// second ("rogue") CA that signs a look-alike, and the gateway's own
/// DTLS/HTTPS server certificate (signed by the test run's main CA, which
/// devices trust as `serverCA`).
struct DevicePKI: Sendable {
    struct Pair: Sendable {
        var certificate: String
        var key: String
    }

    var directory: String
    var deviceCA: String
    /// Signs the gateway's server certificate: what devices pass as `--cacert` / `-R`.
    var serverCA: String
    /// The gateway's DTLS and HTTPS certificate (SAN localhost, 127.0.0.1); its key is 0600.
    var gatewayServer: Pair
    /// CN = the device id, signed by the device CA.
    var devices: [String: Pair]
    /// CN = kitchen-1 again, but signed by another CA.
    var rogueKitchen: Pair

    static let certificateDevices = ["kitchen-1", "hall-2", "meter-7"]

    static func shared() async throws -> DevicePKI {
        try await SharedDevicePKI.instance.get()
    }

    /// `openssl x509 -fingerprint -sha256` of a certificate, as `AB:CD:…`.
    static func fingerprint(_ certificate: String) async throws -> String {
        let result = try await ProcessRunner.run(Tools.openssl, ["x509", "-in", certificate, "-noout", "-fingerprint", "-sha256"], timeout: .seconds(30))
        guard result.succeeded, let value = result.stdoutText.split(separator: "=").last else {
            throw HarnessError("openssl fingerprint failed:\n\(result.summary)")
        }
        return value.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    fileprivate static func make(in directory: TemporaryDirectory, main: TestCertificates) async throws -> DevicePKI {
        func path(_ name: String) -> String { directory.file(name) }
        func makeCA(_ name: String, _ commonName: String) async throws {
            _ = try directory.write("""
                [req]
                distinguished_name = dn
                x509_extensions = v3_ca
                prompt = no
                [dn]
                CN = \(commonName)
                [v3_ca]
                basicConstraints = critical, CA:TRUE
                keyUsage = critical, keyCertSign, cRLSign
                subjectKeyIdentifier = hash

                """, to: "\(name).cnf")
            try await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path("\(name).key")])
            try await openssl(["req", "-x509", "-new", "-key", path("\(name).key"), "-config", path("\(name).cnf"), "-days", "30", "-sha256", "-out", path("\(name).pem")])
        }
        func issue(_ name: String, commonName: String, caCert: String, caKey: String, extensions: String) async throws -> Pair {
            let key = path("\(name).key"), csr = path("\(name).csr"), cert = path("\(name).pem")
            let ext = try directory.write("""
                basicConstraints = critical, CA:FALSE
                keyUsage = critical, digitalSignature, keyEncipherment
                subjectKeyIdentifier = hash
                authorityKeyIdentifier = keyid
                \(extensions)

                """, to: "\(name).ext")
            try await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
            try await openssl(["req", "-new", "-key", key, "-subj", "/CN=\(commonName)", "-out", csr])
            try await openssl([
                "x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey,
                "-set_serial", "0x" + UUID().uuidString.replacingOccurrences(of: "-", with: ""),
                "-days", "30", "-sha256", "-extfile", ext, "-out", cert,
            ])
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
            return Pair(certificate: cert, key: key)
        }

        try await makeCA("device-ca", "iot-gateway test device CA")
        try await makeCA("rogue-ca", "iot-gateway test rogue CA")
        let mainCAKey = (main.caFile as NSString).deletingPathExtension + ".key"
        let server = try await issue(
            "gateway-server", commonName: "localhost", caCert: main.caFile, caKey: mainCAKey,
            extensions: "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1"
        )
        var devices: [String: Pair] = [:]
        for id in certificateDevices {
            devices[id] = try await issue(
                "device-\(id)", commonName: id, caCert: path("device-ca.pem"), caKey: path("device-ca.key"),
                extensions: "extendedKeyUsage = clientAuth"
            )
        }
        let rogue = try await issue(
            "rogue-kitchen-1", commonName: "kitchen-1", caCert: path("rogue-ca.pem"), caKey: path("rogue-ca.key"),
            extensions: "extendedKeyUsage = clientAuth"
        )
        return DevicePKI(
            directory: directory.path, deviceCA: path("device-ca.pem"), serverCA: main.caFile,
            gatewayServer: server, devices: devices, rogueKitchen: rogue
        )
    }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await ProcessRunner.run(Tools.openssl, arguments, timeout: .seconds(30))
        guard result.succeeded else { throw HarnessError("openssl failed:\n\(result.summary)") }
    }
}

/// Makes the device PKI once, even when many tests ask at the same time.
private actor SharedDevicePKI {
    static let instance = SharedDevicePKI()
    private var task: Task<DevicePKI, Error>?

    func get() async throws -> DevicePKI {
        if let task { return try await task.value }
        let task = Task {
            let main = try await TestCertificates.shared()
            let directory = try TemporaryDirectory("device-pki")
            ChildRegistry.removeAtExit(directory.path)
            return try await DevicePKI.make(in: directory, main: main)
        }
        self.task = task
        return try await task.value
    }
}

/// A test device's registry entry and the secrets behind it.
struct TestDevice: Sendable {
    var id: String
    var groups: [String] = []
    var disabled = false
    /// The PSK as text, as coap-client-openssl takes it.
    var psk: String?
    var token: String?
    /// Registers the certificate in `DevicePKI.devices[id]` by its CN.
    var certificateName: String?

    /// Its entry in a registry file.
    var yaml: String {
        var lines = ["- id: \(id)"]
        if !groups.isEmpty { lines.append("  groups: [\(groups.joined(separator: ", "))]") }
        if disabled { lines.append("  disabled: true") }
        if let psk { lines.append("  psk: \(Array(psk.utf8).map { String(format: "%02x", $0) }.joined())") }
        if let token { lines.append("  token_sha256: \(Secrets.tokenHash(token).hex)") }
        if let certificateName { lines.append("  cert_name: \(certificateName)") }
        return lines.joined(separator: "\n") + "\n"
    }

    static func registry(_ devices: [TestDevice]) -> String {
        "devices:\n" + devices.map { $0.yaml.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n" }.joined()
    }
}
