import Foundation
import TestSupport

/// Throw-away certificates, made with the real `openssl` in a temp
/// directory of their own and removed with this object: a device CA; under
/// it the gateway's server certificate (SAN IP:127.0.0.1, DNS:localhost) and
/// a device's client certificate; and a client certificate under another CA.
final class TestPKI {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("iotgw-https-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            try makeCA("ca", subject: "/CN=Test Device CA")
            try makeLeaf("server", ca: "ca", subject: "/CN=localhost", extensions: [
                "subjectAltName=IP:127.0.0.1,DNS:localhost", "extendedKeyUsage=serverAuth",
            ])
            try makeLeaf("client", ca: "ca", subject: "/CN=sensor-1", extensions: [
                "subjectAltName=DNS:sensor-1.devices.test", "extendedKeyUsage=clientAuth",
            ])
            try makeCA("other-ca", subject: "/CN=Another CA")
            try makeLeaf("stranger", ca: "other-ca", subject: "/CN=sensor-1", extensions: [
                "extendedKeyUsage=clientAuth",
            ])
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ file: String) -> String {
        directory.appendingPathComponent(file).path
    }

    var caFile: String { path("ca.pem") }

    /// `openssl x509 -fingerprint -sha256` of `<name>.pem`: `AB:CD:…`.
    func fingerprint(_ name: String) throws -> String {
        let output = try openssl(["x509", "-in", "\(name).pem", "-noout", "-fingerprint", "-sha256"])
        guard let equals = output.firstIndex(of: "=") else {
            throw CurlError(description: "no fingerprint in: \(output)")
        }
        return output[output.index(after: equals)...].trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes a file into the directory (for files that are not PEM).
    func write(_ file: String, _ text: String) throws -> String {
        try text.write(toFile: path(file), atomically: true, encoding: .utf8)
        return path(file)
    }

    private func makeCA(_ name: String, subject: String) throws {
        try openssl([
            "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "\(name).key", "-out", "\(name).pem", "-days", "2", "-subj", subject,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    private func makeLeaf(_ name: String, ca: String, subject: String, extensions: [String]) throws {
        try openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject,
        ])
        let lines = extensions + ["basicConstraints=critical,CA:FALSE"]
        _ = try write("\(name).ext", lines.joined(separator: "\n") + "\n")
        try openssl([
            "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-set_serial",
            String(UInt32.random(in: 1...UInt32.max)), "-days", "2", "-extfile", "\(name).ext", "-out", "\(name).pem",
        ])
    }

    @discardableResult
    private func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let output = try CapturedOutput()
        let errors = try CapturedOutput()
        process.standardOutput = output.handle
        process.standardError = errors.handle
        try process.run()
        process.waitUntilExit()
        let data = output.data
        let problem = errors.data
        guard process.terminationStatus == 0 else {
            throw CurlError(
                status: process.terminationStatus,
                description: "openssl \(arguments.first ?? "") failed: \(String(decoding: problem, as: UTF8.self))"
            )
        }
        return String(decoding: data, as: UTF8.self)
    }
}
