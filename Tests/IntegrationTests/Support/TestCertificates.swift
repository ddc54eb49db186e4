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
        let ca = try await OpenSSLPKI.makeCA("ca", commonName: "iot-gateway integration test CA", in: directory)
        func issue(_ name: String, commonName: String, extensions: String) async throws -> Pair {
            let pair = try await OpenSSLPKI.issue(name, commonName: commonName, by: ca, extensions: extensions, in: directory)
            return Pair(certificate: pair.certificate, key: pair.key)
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
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory.file(file))
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: gateway.key)
        return TestCertificates(directory: directory.path, caFile: ca.certificate, server: server, gateway: gateway, subscriber: subscriber)
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
