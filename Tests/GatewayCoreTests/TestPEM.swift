import Foundation
import TestSupport

/// Certificates and keys made with `openssl` once per test run, for
/// configurations whose files are read for real: a CA, a client certificate
/// it signed (EC P-256, a year), another EC key, a self-signed RSA-2048
/// certificate with its key, and a self-signed CA valid for one day.
struct TestPEM: Sendable {
    var ca: String
    var clientCertificate: String
    var clientKey: String
    var otherKey: String
    var rsaCertificate: String
    var rsaKey: String
    var oneDayCA: String

    static func shared() throws -> TestPEM { try made.get() }

    /// A static let is initialized once, on first use, even with tests in parallel.
    private static let made: Result<TestPEM, any Error> = Result { try make() }

    struct OpenSSLFailed: Error, CustomStringConvertible {
        var description: String
    }

    private static func make() throws -> TestPEM {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-pem-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try openssl(["req", "-x509"] + ec + ["-keyout", path("ca.key"), "-out", path("ca.pem"), "-subj", "/CN=Test CA", "-days", "365"])
        try openssl(["req"] + ec + ["-keyout", path("client.key"), "-out", path("client.csr"), "-subj", "/CN=gw-01"])
        try openssl([
            "x509", "-req", "-in", path("client.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-set_serial", "2", "-days", "365", "-out", path("client.pem"),
        ])
        try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path("other.key")])
        try openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("rsa.key"), "-out", path("rsa.pem"),
            "-subj", "/CN=rsa-gateway", "-days", "365",
        ])
        try openssl(["req", "-x509"] + ec + ["-keyout", path("day.key"), "-out", path("day.pem"), "-subj", "/CN=One Day CA", "-days", "1"])
        func read(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }
        return TestPEM(
            ca: try read("ca.pem"), clientCertificate: try read("client.pem"), clientKey: try read("client.key"),
            otherKey: try read("other.key"), rsaCertificate: try read("rsa.pem"), rsaKey: try read("rsa.key"),
            oneDayCA: try read("day.pem")
        )
    }

    private static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let errors = try CapturedOutput()
        process.standardError = errors.handle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let text = errors.data
        guard process.terminationStatus == 0 else {
            throw OpenSSLFailed(description: "openssl \(arguments.joined(separator: " ")): \(String(decoding: text, as: UTF8.self))")
        }
    }
}
