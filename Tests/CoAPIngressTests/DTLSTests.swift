import Foundation
import GatewayCore
import Logging
import Testing
@testable import CoAPIngress

/// CoAP over DTLS against the real `coap-client-openssl`. Serialized: each
/// handshake costs CPU, and the machine is shared.
@Suite("CoAP over DTLS with coap-client-openssl", .serialized)
struct DTLSTests {
    static let key = Array("s3cret-key".utf8)

    func pki() throws -> DTLSTestPKI { try DTLSTestPKI.shared.get() }

    func dtlsClient(_ arguments: [String], breakAfter seconds: Int = 5) throws -> CoAPResult {
        try coapClient(["-B", "\(seconds)"] + arguments, timeout: Double(seconds) + 10, client: "coap-client-openssl")
    }

    @Test("a PSK device is answered 2.04 after its commit, and the request carries the identity and key", arguments: [false, true])
    func presharedKey(withCertificates: Bool) throws {
        let pipeline = FakePipeline(.complete(after: 0.1, .success(.stored)))
        let authority = FakeAuthority(keys: ["dev-1": Self.key])
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: withCertificates ? pki() : nil)
        defer { server.stop() }
        let result = try dtlsClient(["-m", "post", "-u", "dev-1", "-k", "s3cret-key", "-e", "21.5", "\(server.secureURI)/sensors/dev-1/t"])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
        #expect(result.type == "ACK", "\(result.stdout)\(result.stderr)")
        let request = try #require(pipeline.requests.first)
        #expect(pipeline.requests.count == 1)
        #expect(request.transport == .secure)
        #expect(request.credential == .psk(identity: "dev-1", key: Self.key))
        #expect(request.path == ["sensors", "dev-1", "t"])
        #expect(request.payload == Array("21.5".utf8))
        #expect(request.peer.hasPrefix("127.0.0.1:"))
        #expect(authority.calls.contains(.preSharedKey(identity: "dev-1", source: "127.0.0.1")))
        #expect(authority.failures.isEmpty)
    }

    @Test("an unknown PSK identity is refused in the handshake: no answer, nothing reaches the pipeline")
    func unknownIdentity() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let authority = FakeAuthority(keys: ["dev-1": Self.key])
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: pki())
        defer { server.stop() }
        let result = try dtlsClient(["-m", "post", "-u", "ghost", "-k", "s3cret-key", "-e", "1", "\(server.secureURI)/a"], breakAfter: 4)
        #expect(result.responses.isEmpty, "\(result.stdout)\(result.stderr)")
        #expect(pipeline.requests.isEmpty)
        #expect(authority.calls.contains(.preSharedKey(identity: "ghost", source: "127.0.0.1")))
        // The authority counted the refusal itself; the failed handshake
        // that follows must not be counted again.
        Thread.sleep(forTimeInterval: 1.5)
        #expect(authority.failures.isEmpty, "\(authority.calls)")
    }

    @Test("a device certificate under the device CA is answered, and the request carries the certificate")
    func deviceCertificate() throws {
        let pki = try pki()
        let pipeline = FakePipeline(.complete(after: 0.1, .success(.stored)))
        let authority = FakeAuthority()
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: pki)
        defer { server.stop() }
        let result = try dtlsClient([
            "-m", "post", "-c", pki.device.certificate, "-j", pki.device.key, "-R", pki.gatewayCA, "-e", "1",
            "\(server.secureURI)/sensors/sensor-7/t",
        ])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
        let request = try #require(pipeline.requests.first)
        #expect(pipeline.requests.count == 1)
        #expect(request.transport == .secure)
        guard case .certificate(let certificate) = request.credential else {
            Issue.record("expected a certificate, got \(request.credential)")
            return
        }
        #expect(certificate.fingerprint == (try DTLSTestPKI.fingerprint(of: pki.device.certificate)))
        #expect(certificate.names.contains("sensor-7"))
        #expect(certificate.names.contains("sensor-7.devices.test"))
        #expect(authority.calls.contains(.acceptsCertificate(certificate, source: "127.0.0.1")))
        #expect(authority.failures.isEmpty)
    }

    @Test("a certificate from another CA is refused by the handshake, before the registry is asked")
    func certificateFromAnotherCA() throws {
        let pki = try pki()
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let authority = FakeAuthority()
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: pki)
        defer { server.stop() }
        let result = try dtlsClient([
            "-m", "post", "-c", pki.rogue.certificate, "-j", pki.rogue.key, "-R", pki.gatewayCA, "-e", "1", "\(server.secureURI)/a",
        ], breakAfter: 4)
        #expect(result.responses.isEmpty, "\(result.stdout)\(result.stderr)")
        #expect(pipeline.requests.isEmpty)
        #expect(!authority.calls.contains { if case .acceptsCertificate = $0 { return true } else { return false } })
        #expect(authority.wait { calls in calls.contains(.handshakeFailed(source: "127.0.0.1")) }, "\(authority.calls)")
        #expect(authority.failures == ["127.0.0.1"], "counted once: \(authority.calls)")
    }

    @Test("a verified certificate the registry does not know is refused, and counted once (by the authority)")
    func certificateOfNoDevice() throws {
        let pki = try pki()
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let authority = FakeAuthority(acceptCertificates: false)
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: pki)
        defer { server.stop() }
        let result = try dtlsClient([
            "-m", "post", "-c", pki.device.certificate, "-j", pki.device.key, "-R", pki.gatewayCA, "-e", "1", "\(server.secureURI)/a",
        ], breakAfter: 4)
        #expect(result.responses.isEmpty, "\(result.stdout)\(result.stderr)")
        #expect(pipeline.requests.isEmpty)
        #expect(authority.calls.contains { if case .acceptsCertificate = $0 { return true } else { return false } })
        Thread.sleep(forTimeInterval: 1.5)
        #expect(authority.failures.isEmpty, "\(authority.calls)")
    }

    @Test("plain CoAP on the same server still arrives as plain, without credentials")
    func plainBesideDTLS() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let authority = FakeAuthority(keys: ["dev-1": Self.key])
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: pki())
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-e", "1", "\(server.plainURI)/a"])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
        let request = try #require(pipeline.requests.first)
        #expect(request.transport == .plain)
        #expect(request.credential == .none)
        #expect(authority.calls.isEmpty)
    }

    @Test("over DTLS a slow commit gets an empty ACK, then a separate CON 2.04")
    func separateResponse() throws {
        let pipeline = FakePipeline(.complete(after: 1.2, .success(.stored)))
        let authority = FakeAuthority(keys: ["dev-1": Self.key])
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: nil, emptyAckDelay: 0.3)
        defer { server.stop() }
        let result = try dtlsClient(["-m", "post", "-u", "dev-1", "-k", "s3cret-key", "-e", "1", "\(server.secureURI)/a"])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
        #expect(result.type == "CON", "\(result.stdout)\(result.stderr)")
        #expect(pipeline.requests.count == 1)
    }

    @Test("over DTLS a Block1 transfer is reassembled and answered once")
    func blockwise() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let authority = FakeAuthority(keys: ["dev-1": Self.key])
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: nil, maxBody: 4096)
        defer { server.stop() }
        let body = (0..<3000).map { _ in UInt8.random(in: UInt8(ascii: "a")...UInt8(ascii: "z")) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("coap-dtls-body-\(UUID().uuidString)")
        try Data(body).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try dtlsClient(["-m", "post", "-b", "256", "-f", file.path, "-u", "dev-1", "-k", "s3cret-key", "\(server.secureURI)/big"])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
        #expect(pipeline.requests.count == 1)
        #expect(pipeline.requests.first?.payload == body)
        #expect(pipeline.requests.first?.credential == .psk(identity: "dev-1", key: Self.key))
    }

    @Test("DTLS listeners without a device authority, or with unreadable certificates, or an address not ours, do not start")
    func startupFailures() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        var logger = Logger(label: "coap-dtls-test")
        logger.logLevel = .critical
        func settings(dtls address: String = "127.0.0.1") -> CoAPSettings {
            var settings = CoAPSettings(listen: [ListenAddress(host: "127.0.0.1", port: freeUDPPort())], maxBody: 1024)
            settings.dtls.listen = [ListenAddress(host: address, port: freeUDPPort())]
            return settings
        }

        let withoutAuthority = CoAPServer(settings: settings(), pipeline: pipeline, logger: logger)
        #expect(throws: CoAPServerError.self) { try withoutAuthority.start() }

        var missingFiles = settings()
        missingFiles.dtls.certFile = "/nonexistent/server.pem"
        missingFiles.dtls.keyFile = "/nonexistent/server.key"
        missingFiles.dtls.caFile = "/nonexistent/ca.pem"
        let unreadable = CoAPServer(settings: missingFiles, pipeline: pipeline, logger: logger, authority: FakeAuthority())
        let error = #expect(throws: CoAPServerError.self) { try unreadable.start() }
        #expect(error?.description.contains("/nonexistent/server.pem") == true, "\(String(describing: error))")

        let foreign = CoAPServer(settings: settings(dtls: "192.0.2.1"), pipeline: pipeline, logger: logger, authority: FakeAuthority())
        let bindError = #expect(throws: CoAPServerError.self) { try foreign.start() }
        guard case .bind = bindError else {
            Issue.record("expected a bind error, got \(String(describing: bindError))")
            return
        }
    }
}

/// Apart from the serialized suite: it waits for the handshake deadline,
/// and may do so while the other DTLS tests run.
@Suite("CoAP over DTLS: a wrong PSK key")
struct DTLSWrongKeyTests {
    @Test("a wrong PSK key never completes the handshake: no answer, nothing reaches the pipeline")
    func wrongKey() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let authority = FakeAuthority(keys: ["dev-1": DTLSTests.key])
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: nil, handshakeTimeout: 3)
        defer { server.stop() }
        let result = try coapClient(
            ["-B", "4", "-m", "post", "-u", "dev-1", "-k", "not-the-key", "-e", "1", "\(server.secureURI)/a"],
            timeout: 15, client: "coap-client-openssl"
        )
        #expect(result.responses.isEmpty, "\(result.stdout)\(result.stderr)")
        #expect(pipeline.requests.isEmpty)
        #expect(authority.calls.contains(.preSharedKey(identity: "dev-1", source: "127.0.0.1")))
        // DTLS drops records it cannot decrypt, so there is no alert: the
        // handshake is counted as failed, once, when its deadline passes.
        #expect(authority.wait(upTo: 20) { $0.contains(.handshakeFailed(source: "127.0.0.1")) }, "\(authority.calls)")
        #expect(authority.failures == ["127.0.0.1"], "\(authority.calls)")
    }
}
