import Foundation

/// Certificate authorities and leaf certificates made with `openssl` in a
/// temporary directory: EC P-256 keys (quick to make), valid a year by
/// default (check-config warns about a certificate with under 30 days left).
enum OpenSSLPKI {
    struct Pair: Sendable {
        var certificate: String
        var key: String
    }

    /// `NAME.pem` and `NAME.key` in `directory`: a self-signed CA.
    static func makeCA(_ name: String, commonName: String, days: Int = 365, in directory: TemporaryDirectory) async throws -> Pair {
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
        let key = directory.file("\(name).key"), certificate = directory.file("\(name).pem")
        try await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
        try await openssl(["req", "-x509", "-new", "-key", key, "-config", directory.file("\(name).cnf"), "-days", String(days), "-sha256", "-out", certificate])
        return Pair(certificate: certificate, key: key)
    }

    /// `NAME.pem` and `NAME.key`: a leaf certificate for `commonName` signed
    /// by `ca`, with `extensions` (extendedKeyUsage, subjectAltName) added.
    static func issue(
        _ name: String, commonName: String, by ca: Pair, extensions: String, days: Int = 365, in directory: TemporaryDirectory
    ) async throws -> Pair {
        let key = directory.file("\(name).key"), csr = directory.file("\(name).csr"), certificate = directory.file("\(name).pem")
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
            "x509", "-req", "-in", csr, "-CA", ca.certificate, "-CAkey", ca.key,
            "-set_serial", "0x" + UUID().uuidString.replacingOccurrences(of: "-", with: ""),
            "-days", String(days), "-sha256", "-extfile", ext, "-out", certificate,
        ])
        return Pair(certificate: certificate, key: key)
    }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await ProcessRunner.run(Tools.openssl, arguments, timeout: .seconds(30))
        guard result.succeeded else { throw HarnessError("openssl failed:\n\(result.summary)") }
    }
}
