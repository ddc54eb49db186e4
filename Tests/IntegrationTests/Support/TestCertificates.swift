import Foundation

/// A throw-away PKI made with `openssl`: a CA, the broker's server
/// certificate (SAN DNS:localhost, IP:127.0.0.1 — libmosquitto checks the
/// host name), and client certificates for the gateway and the test
/// subscriber, all signed by the CA. EC P-256 keys: quick to make.
struct TestCertificates: Sendable {
    struct Pair: Sendable {
        var certificate: String
        var key: String
    }

    var directory: String
    var caFile: String
    var server: Pair
    var gateway: Pair
    var subscriber: Pair

    /// One set for the whole test run (made on first use). Every broker and
    /// gateway in the run trusts the same CA; they share nothing else.
    static func shared() async throws -> TestCertificates {
        try await SharedCertificates.instance.get()
    }

    static func make(in directory: TemporaryDirectory) async throws -> TestCertificates {
        let dir = directory.path
        func path(_ name: String) -> String { directory.file(name) }

        _ = try directory.write("""
            [req]
            distinguished_name = dn
            x509_extensions = v3_ca
            prompt = no
            [dn]
            CN = iot-gateway integration test CA
            [v3_ca]
            basicConstraints = critical, CA:TRUE
            keyUsage = critical, keyCertSign, cRLSign
            subjectKeyIdentifier = hash

            """, to: "ca.cnf")
        try await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path("ca.key")])
        try await openssl([
            "req", "-x509", "-new", "-key", path("ca.key"), "-config", path("ca.cnf"),
            "-days", "30", "-sha256", "-out", path("ca.pem"),
        ])

        let leaf = """
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature, keyEncipherment
            subjectKeyIdentifier = hash
            authorityKeyIdentifier = keyid

            """
        func issue(_ name: String, commonName: String, extensions: String) async throws -> Pair {
            let key = path("\(name).key"), csr = path("\(name).csr"), cert = path("\(name).pem")
            let ext = try directory.write(leaf + extensions + "\n", to: "\(name).ext")
            try await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
            try await openssl(["req", "-new", "-key", key, "-subj", "/CN=\(commonName)", "-out", csr])
            try await openssl([
                "x509", "-req", "-in", csr, "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                "-set_serial", "0x" + UUID().uuidString.replacingOccurrences(of: "-", with: ""),
                "-days", "30", "-sha256", "-extfile", ext, "-out", cert,
            ])
            return Pair(certificate: cert, key: key)
        }

        let server = try await issue(
            "server", commonName: "localhost",
            extensions: "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1"
        )
        let gateway = try await issue("gateway", commonName: "gw-test", extensions: "extendedKeyUsage = clientAuth")
        let subscriber = try await issue("subscriber", commonName: "test-subscriber", extensions: "extendedKeyUsage = clientAuth")

        // The broker may run as the `mosquitto` user (see MosquittoBroker):
        // everything it reads must be readable to it. Test keys only. The
        // gateway's own key stays private: the gateway refuses a key file
        // every user can read.
        for file in try FileManager.default.contentsOfDirectory(atPath: dir) {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path(file))
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: gateway.key)
        return TestCertificates(directory: dir, caFile: path("ca.pem"), server: server, gateway: gateway, subscriber: subscriber)
    }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await ProcessRunner.run(Tools.openssl, arguments, timeout: .seconds(30))
        guard result.succeeded else { throw HarnessError("openssl failed:\n\(result.summary)") }
    }
}

/// Makes the shared certificates once, even when many tests ask at the same time.
private actor SharedCertificates {
    static let instance = SharedCertificates()
    private var task: Task<TestCertificates, Error>?

    func get() async throws -> TestCertificates {
        if let task { return try await task.value }
        let task = Task {
            let directory = try TemporaryDirectory("pki")
            ChildRegistry.removeAtExit(directory.path)
            return try await TestCertificates.make(in: directory)
        }
        self.task = task
        return try await task.value
    }
}
