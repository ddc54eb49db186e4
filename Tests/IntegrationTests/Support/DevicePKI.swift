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
        func issue(_ name: String, commonName: String, by ca: OpenSSLPKI.Pair, extensions: String) async throws -> Pair {
            let pair = try await OpenSSLPKI.issue(name, commonName: commonName, by: ca, extensions: extensions, in: directory)
            // The gateway refuses a private key every user may read.
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: pair.key)
            return Pair(certificate: pair.certificate, key: pair.key)
        }
        let deviceCA = try await OpenSSLPKI.makeCA("device-ca", commonName: "iot-gateway test device CA", in: directory)
        let rogueCA = try await OpenSSLPKI.makeCA("rogue-ca", commonName: "iot-gateway test rogue CA", in: directory)
        let mainCA = OpenSSLPKI.Pair(certificate: main.caFile, key: (main.caFile as NSString).deletingPathExtension + ".key")
        let server = try await issue(
            "gateway-server", commonName: "localhost", by: mainCA,
            extensions: "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1"
        )
        var devices: [String: Pair] = [:]
        for id in certificateDevices {
            devices[id] = try await issue("device-\(id)", commonName: id, by: deviceCA, extensions: "extendedKeyUsage = clientAuth")
        }
        let rogue = try await issue("rogue-kitchen-1", commonName: "kitchen-1", by: rogueCA, extensions: "extendedKeyUsage = clientAuth")
        return DevicePKI(
            directory: directory.path, deviceCA: deviceCA.certificate, serverCA: main.caFile,
            gatewayServer: server, devices: devices, rogueKitchen: rogue
        )
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
