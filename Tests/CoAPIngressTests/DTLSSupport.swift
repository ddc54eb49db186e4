import Foundation
import TestSupport
import GatewayCore
import Logging
import Synchronization
@testable import CoAPIngress

/// A handshake authority double: knows some PSK identities, accepts
/// certificates (or not), and records every question.
final class FakeAuthority: HandshakeAuthority {
    enum Call: Equatable, Sendable {
        case preSharedKey(identity: String, source: String)
        case acceptsCertificate(PeerCertificate, source: String)
        case handshakeFailed(source: String)
    }

    let keys: [String: [UInt8]]
    let acceptCertificates: Bool
    private let log = Mutex<[Call]>([])

    init(keys: [String: [UInt8]] = [:], acceptCertificates: Bool = true) {
        self.keys = keys
        self.acceptCertificates = acceptCertificates
    }

    var calls: [Call] { log.withLock { $0 } }

    var failures: [String] {
        calls.compactMap { if case .handshakeFailed(let source) = $0 { return source } else { return nil } }
    }

    func preSharedKey(identity: String, source: String) -> [UInt8]? {
        log.withLock { $0.append(.preSharedKey(identity: identity, source: source)) }
        return keys[identity]
    }

    func acceptsCertificate(_ certificate: PeerCertificate, source: String) -> Bool {
        log.withLock { $0.append(.acceptsCertificate(certificate, source: source)) }
        return acceptCertificates
    }

    func handshakeFailed(source: String) {
        log.withLock { $0.append(.handshakeFailed(source: source)) }
    }

    /// Waits (generously: a busy machine) until `condition` holds.
    func wait(upTo seconds: Double = 10, until condition: ([Call]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(calls) { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return condition(calls)
    }
}

/// A throw-away PKI made with `openssl` once per test run: the device CA
/// with one device certificate, a second CA with a rogue device, and the
/// gateway's server certificate under a CA of its own. EC P-256: quick.
struct DTLSTestPKI: Sendable {
    struct Pair: Sendable {
        var certificate: String
        var key: String
    }

    var directory: String
    var deviceCA: String
    var gatewayCA: String
    var server: Pair
    var device: Pair
    var rogue: Pair

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let shared = Result<DTLSTestPKI, Failure>(catching: { () throws(Failure) -> DTLSTestPKI in try make() })

    /// SHA-256 of a certificate as `openssl x509 -fingerprint -sha256` prints it.
    static func fingerprint(of certificate: String) throws -> Digest {
        let output = try openssl(["x509", "-noout", "-fingerprint", "-sha256", "-in", certificate])
        guard let equals = output.firstIndex(of: "="),
              let digest = Digest(hex: output[output.index(after: equals)...].trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Failure(description: "unexpected openssl output: \(output)")
        }
        return digest
    }

    private static func make() throws(Failure) -> DTLSTestPKI {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("coap-dtls-\(UUID().uuidString)").path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            func path(_ name: String) -> String { directory + "/" + name }
            func write(_ text: String, _ name: String) throws -> String {
                try text.write(toFile: path(name), atomically: true, encoding: .utf8)
                return path(name)
            }
            let caExtensions = try write("""
                basicConstraints = critical, CA:TRUE
                keyUsage = critical, keyCertSign, cRLSign
                subjectKeyIdentifier = hash

                """, "ca.ext")
            func authority(_ name: String, _ commonName: String) throws -> String {
                try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path("\(name).key")])
                try openssl(["req", "-new", "-key", path("\(name).key"), "-subj", "/CN=\(commonName)", "-out", path("\(name).csr")])
                try openssl([
                    "x509", "-req", "-in", path("\(name).csr"), "-signkey", path("\(name).key"), "-days", "2", "-sha256",
                    "-extfile", caExtensions, "-out", path("\(name).pem"),
                ])
                return path("\(name).pem")
            }
            func issue(_ name: String, _ commonName: String, by ca: String, extensions: String) throws -> Pair {
                let ext = try write("""
                    basicConstraints = critical, CA:FALSE
                    keyUsage = critical, digitalSignature
                    \(extensions)

                    """, "\(name).ext")
                try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path("\(name).key")])
                try openssl(["req", "-new", "-key", path("\(name).key"), "-subj", "/CN=\(commonName)", "-out", path("\(name).csr")])
                try openssl([
                    "x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
                    "-set_serial", "0x" + UUID().uuidString.replacingOccurrences(of: "-", with: ""),
                    "-days", "2", "-sha256", "-extfile", ext, "-out", path("\(name).pem"),
                ])
                return Pair(certificate: path("\(name).pem"), key: path("\(name).key"))
            }
            let deviceCA = try authority("device-ca", "Test device CA")
            let gatewayCA = try authority("gateway-ca", "Test gateway CA")
            _ = try authority("rogue-ca", "Rogue CA")
            let server = try issue(
                "server", "gateway.test", by: "gateway-ca",
                extensions: "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:gateway.test, IP:127.0.0.1"
            )
            let device = try issue(
                "device", "sensor-7", by: "device-ca",
                extensions: "extendedKeyUsage = clientAuth\nsubjectAltName = DNS:sensor-7.devices.test"
            )
            let rogue = try issue("rogue", "sensor-7", by: "rogue-ca", extensions: "extendedKeyUsage = clientAuth")
            return DTLSTestPKI(
                directory: directory, deviceCA: deviceCA, gatewayCA: gatewayCA, server: server, device: device, rogue: rogue
            )
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "cannot make the test PKI: \(error)")
        }
    }

    @discardableResult
    private static func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let out = try CapturedOutput(), err = try CapturedOutput()
        process.standardOutput = out.handle
        process.standardError = err.handle
        try process.run()
        process.waitUntilExit()
        let output = out.data
        let errors = err.data
        guard process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.joined(separator: " ")): \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// A CoAP server with a plain and a DTLS listener on free loopback ports.
struct DTLSTestServer {
    let server: CoAPServer
    let plainPort: UInt16
    let securePort: UInt16

    /// `pki`: also X.509 (the gateway's certificate and the device CA); else PSK only.
    static func start(
        _ pipeline: FakePipeline, authority: FakeAuthority, pki: DTLSTestPKI?, maxBody: Int = 1024,
        maxHandshakes: Int = 64, emptyAckDelay: Double = 3, handshakeTimeout: Double = 30
    ) throws -> DTLSTestServer {
        let plainPort = freeUDPPort()
        var securePort = freeUDPPort()
        while securePort == plainPort { securePort = freeUDPPort() }
        var settings = CoAPSettings(listen: [ListenAddress(host: "127.0.0.1", port: plainPort)], maxBody: maxBody)
        settings.dtls.listen = [ListenAddress(host: "127.0.0.1", port: securePort)]
        settings.dtls.maxHandshakes = maxHandshakes
        if let pki {
            settings.dtls.certFile = pki.server.certificate
            settings.dtls.keyFile = pki.server.key
            settings.dtls.caFile = pki.deviceCA
        }
        var logger = Logger(label: "coap-dtls-test")
        logger.logLevel = .warning
        let server = CoAPServer(
            settings: settings, pipeline: pipeline, logger: logger, authority: authority, emptyAckDelay: emptyAckDelay,
            handshakeTimeout: handshakeTimeout
        )
        try server.start()
        return DTLSTestServer(server: server, plainPort: plainPort, securePort: securePort)
    }

    var secureURI: String { "coaps://127.0.0.1:\(securePort)" }
    var plainURI: String { "coap://127.0.0.1:\(plainPort)" }

    func stop() { server.stop(timeout: 2) }
}
