import Foundation
import GatewayCore
@testable import HTTPIngress
import Testing

/// HTTPS with the real curl: what a request on a TLS listener presents, and
/// that a plain listener presents nothing.
@Suite("HTTPS: transport and credentials")
struct HTTPSTests {
    /// curl's options to trust the test CA, POST a small body and add `extra`.
    private static func post(_ url: String, _ pki: TestPKI, _ extra: [String] = []) -> [String] {
        ["--cacert", pki.caFile, "--data-binary", "21.5"] + extra + [url]
    }

    private static func accepting() -> FakePipeline {
        FakePipeline(.completeInline(.success(.stored)))
    }

    @Test func bearerToken() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        let response = try Curl.run(Self.post("\(secure)/sensors/t1", pki, ["-H", "Authorization: Bearer tok-123_ABC"]))
        #expect(response.status == 202)
        #expect(response.body == "accepted\n")
        let request = try #require(pipeline.requests.first)
        #expect(request.transport == .secure)
        #expect(request.credential == .bearer(token: "tok-123_ABC"))
        #expect(request.path == ["sensors", "t1"])
        #expect(request.payload == Array("21.5".utf8))
    }

    @Test func basicIdAndToken() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        // The token may hold a colon; the id cannot.
        #expect(try Curl.run(Self.post("\(secure)/a", pki, ["-u", "sensor-1:to:ken"])).status == 202)
        #expect(pipeline.requests.first?.credential == .basic(id: "sensor-1", token: "to:ken"))
        #expect(pipeline.requests.first?.transport == .secure)
    }

    @Test func unsupportedScheme() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        _ = try Curl.run(Self.post("\(secure)/a", pki, ["-H", "Authorization: Digest username=\"sensor-1\""]))
        #expect(pipeline.requests.first?.credential
            == .unusable(reason: "unsupported Authorization scheme; use Bearer or Basic"))
    }

    @Test func malformedBasic() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        _ = try Curl.run(Self.post("\(secure)/a", pki, ["-H", "Authorization: Basic %%%not-base64"]))
        let noColon = Data("sensor-1".utf8).base64EncodedString()
        _ = try Curl.run(Self.post("\(secure)/a", pki, ["-H", "Authorization: basic \(noColon)"]))
        let credentials = pipeline.requests.map(\.credential)
        #expect(credentials == [
            .unusable(reason: "malformed Basic credentials; expected base64 of id:token"),
            .unusable(reason: "Basic credentials without a colon; expected id:token"),
        ])
    }

    @Test func clientCertificateUnderTheDeviceCA() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        let response = try Curl.run(Self.post("\(secure)/a", pki, [
            "--cert", pki.path("client.pem"), "--key", pki.path("client.key"),
        ]))
        #expect(response.status == 202)
        let request = try #require(pipeline.requests.first)
        #expect(request.transport == .secure)
        guard case .certificate(let certificate) = request.credential else {
            Issue.record("expected a certificate, got \(request.credential)")
            return
        }
        let expected = try pki.fingerprint("client")
        #expect(certificate.fingerprint.fingerprintText == expected)
        #expect(certificate.fingerprint == Digest(hex: expected))
        #expect(certificate.names == ["sensor-1", "sensor-1.devices.test"])
    }

    @Test func clientCertificateFromAnotherCA() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        // The handshake succeeds; the request carries a credential that
        // proves nothing, for the authenticator to refuse.
        let response = try Curl.run(Self.post("\(secure)/a", pki, [
            "--cert", pki.path("stranger.pem"), "--key", pki.path("stranger.key"),
        ]))
        #expect(response.status == 202)
        #expect(pipeline.requests.first?.credential == .unusable(reason: "client certificate is not signed by the device CA"))
    }

    @Test func noCredentialsOverTLS() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        #expect(try Curl.run(Self.post("\(secure)/a", pki)).status == 202)
        #expect(pipeline.requests.first?.transport == .secure)
        #expect(pipeline.requests.first?.credential == PresentedCredential.none)
    }

    @Test func authorizationHeaderComesBeforeTheCertificate() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        _ = try Curl.run(Self.post("\(secure)/a", pki, [
            "--cert", pki.path("client.pem"), "--key", pki.path("client.key"), "-H", "Authorization: Bearer t",
        ]))
        #expect(pipeline.requests.first?.credential == .bearer(token: "t"))
    }

    @Test func everyRequestOnAKeptAliveConnectionCarriesTheCertificate() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        // One curl, three URLs: one connection, reused.
        let client = try Curl([
            "--cacert", pki.caFile, "--cert", pki.path("client.pem"), "--key", pki.path("client.key"),
            "--data-binary", "1", "\(secure)/a", "\(secure)/b", "\(secure)/c",
        ], includeHeaders: false)
        #expect(try client.finishRaw() == "accepted\naccepted\naccepted\n")
        let requests = pipeline.requests
        #expect(requests.count == 3)
        #expect(Set(requests.map(\.peer)).count == 1, "curl should have reused its connection")
        let fingerprint = try Digest(hex: pki.fingerprint("client"))
        for request in requests {
            guard case .certificate(let certificate) = request.credential else {
                Issue.record("expected a certificate, got \(request.credential)")
                continue
            }
            #expect(certificate.fingerprint == fingerprint)
        }
    }

    @Test func withoutADeviceCANoCertificateIsAskedFor() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki, deviceCA: false)
        defer { server.stop() }

        #expect(try Curl.run(Self.post("\(secure)/a", pki, [
            "--cert", pki.path("client.pem"), "--key", pki.path("client.key"),
        ])).status == 202)
        #expect(pipeline.requests.first?.credential == PresentedCredential.none)
    }

    @Test func plainListenerIgnoresAuthorization() throws {
        let pki = try TestPKI()
        let pipeline = Self.accepting()
        let (server, plain, _) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        let response = try Curl.run(["--data-binary", "x", "-H", "Authorization: Bearer sent-in-clear", "\(plain)/a"])
        #expect(response.status == 202)
        let request = try #require(pipeline.requests.first)
        #expect(request.transport == .plain)
        #expect(request.credential == PresentedCredential.none)
    }

    @Test func unauthorizedCarriesBothChallenges() throws {
        let pki = try TestPKI()
        let pipeline = FakePipeline(.reject(.unauthorized(reason: "invalid token", invalidCredentials: true)))
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        let response = try Curl.run(Self.post("\(secure)/a", pki, ["-H", "Authorization: Bearer wrong"]))
        #expect(response.status == 401)
        #expect(response.values(of: "www-authenticate") == [
            "Bearer realm=\"iot-gateway\", error=\"invalid_token\"",
            "Basic realm=\"iot-gateway\", charset=\"UTF-8\"",
        ])
        #expect(response.body == "invalid token\n")
    }

    @Test func tooManyRequestsCarriesRetryAfter() throws {
        let pki = try TestPKI()
        let pipeline = FakePipeline(.reject(.tooManyRequests(retryAfterSeconds: 30, reason: "too many failed attempts")))
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        let response = try Curl.run(Self.post("\(secure)/a", pki, ["-u", "sensor-1:wrong"]))
        #expect(response.status == 429)
        #expect(response.headers["retry-after"] == "30")
        #expect(response.body == "too many failed attempts\n")
    }

    @Test func forbiddenIs403() throws {
        let pki = try TestPKI()
        let pipeline = FakePipeline(.reject(.forbidden(reason: "device sensor-1 may not publish here")))
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        let response = try Curl.run(Self.post("\(secure)/a", pki, ["-u", "sensor-1:token"]))
        #expect(response.status == 403)
        #expect(response.values(of: "www-authenticate").isEmpty)
        #expect(response.body == "device sensor-1 may not publish here\n")
    }
}

@Suite("HTTPS: lifecycle")
struct HTTPSLifecycleTests {
    @Test func bothListenersAreBound() throws {
        let pki = try TestPKI()
        let (server, _, _) = try TestServer.startSecure(FakePipeline(.completeInline(.success(.stored))), pki: pki)
        defer { server.stop() }
        #expect(server.boundPorts.count == 1)
        #expect(server.boundTLSPorts.count == 1)
        #expect(!server.boundTLSPorts.contains(0))
        #expect(server.boundPorts != server.boundTLSPorts)
    }

    @Test func noTLSListenerWithoutTLSSettings() throws {
        let (server, _) = try TestServer.start(FakePipeline(.completeInline(.success(.stored))))
        defer { server.stop() }
        #expect(server.boundTLSPorts.isEmpty)
    }

    @Test func suspendedRequestIsAnsweredOverTLS() throws {
        let pki = try TestPKI()
        let pipeline = FakePipeline(.hold)
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        let client = try Curl(["--cacert", pki.caFile, "-u", "sensor-1:token", "--data-binary", "x", "\(secure)/a"])
        #expect(pipeline.waitForRequests(1))
        pipeline.completeHeld(.success(.delivered))
        let response = try client.finish()
        #expect(response.status == 200)
        #expect(response.body == "delivered\n")
    }

    @Test func manyConcurrentTLSRequestsRacingTheirCompletions() throws {
        let pki = try TestPKI()
        let pipeline = FakePipeline(.completeRandomly)
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }

        let count = 40
        let output = try Curl(
            ["--cacert", pki.caFile, "--cert", pki.path("client.pem"), "--key", pki.path("client.key"),
             "--parallel", "--parallel-max", "10", "--write-out", "%{http_code}\\n", "--data-binary", "p"]
                + (1...count).flatMap { ["--output", "/dev/null", "\(secure)/load/\($0)"] },
            includeHeaders: false
        ).finishRaw()
        #expect(output.split(separator: "\n") == Array(repeating: "202", count: count))
        #expect(pipeline.requests.count == count)
        #expect(pipeline.requests.allSatisfy {
            if case .certificate = $0.credential { return $0.transport == .secure }
            return false
        })
    }

    @Test func stopAnswers503ToASuspendedTLSRequest() throws {
        let pki = try TestPKI()
        let pipeline = FakePipeline(.hold)
        let (server, _, secure) = try TestServer.startSecure(pipeline, pki: pki, drainTimeout: .milliseconds(200))

        let client = try Curl(["--cacert", pki.caFile, "--data-binary", "x", "\(secure)/a"])
        #expect(pipeline.waitForRequests(1))
        server.stop()

        let response = try client.finish()
        #expect(response.status == 503)
        #expect(response.headers["retry-after"] == "5")
        #expect(response.headers["connection"] == "close")
        pipeline.completeHeld(.success(.stored))
        #expect(throws: CurlError.self) { try Curl.run(["--cacert", pki.caFile, "--data-binary", "x", "\(secure)/a"]) }
    }

    @Test func plainHTTPOnTheTLSPortFailsAndTheListenerCarriesOn() throws {
        let pki = try TestPKI()
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, _, _) = try TestServer.startSecure(pipeline, pki: pki)
        defer { server.stop() }
        let port = server.boundTLSPorts[0]

        #expect(throws: CurlError.self) { try Curl.run(["--data-binary", "x", "http://127.0.0.1:\(port)/a"]) }
        #expect(try Curl.run(["--cacert", pki.caFile, "--data-binary", "x", "https://127.0.0.1:\(port)/a"]).status == 202)
        #expect(pipeline.requests.count == 1)
    }

    @Test func unreadableCertificateFileStopsTheStartBeforeAnythingBinds() throws {
        let pki = try TestPKI()
        var settings = TestServer.secureSettings(pki: pki)
        let missing = pki.path("nowhere.pem")
        settings.tls?.certFile = missing
        let server = HTTPServer(settings: settings, pipeline: FakePipeline(.hold), logger: TestServer.logger)

        #expect(throws: HTTPServerError.tlsFileUnreadable(path: missing, reason: "No such file or directory")) {
            try server.start()
        }
        #expect(server.boundPorts.isEmpty)
        #expect(server.boundTLSPorts.isEmpty)
        // A failed start counts.
        #expect(throws: HTTPServerError.self) { try server.start() }
    }

    @Test func keyThatDoesNotMatchTheCertificate() throws {
        let pki = try TestPKI()
        var settings = TestServer.secureSettings(pki: pki)
        settings.tls?.keyFile = pki.path("client.key")
        let server = HTTPServer(settings: settings, pipeline: FakePipeline(.hold), logger: TestServer.logger)

        do {
            try server.start()
            Issue.record("start should have failed")
        } catch {
            guard case .tlsCredentialsInvalid(let reason) = error else {
                Issue.record("unexpected error: \(error)")
                return
            }
            #expect(reason.hasPrefix("\(pki.path("server.pem")) and \(pki.path("client.key")) are not a usable"))
        }
        #expect(server.boundPorts.isEmpty)
    }

    @Test func deviceCAFileWithoutACertificate() throws {
        let pki = try TestPKI()
        var settings = TestServer.secureSettings(pki: pki)
        let empty = try pki.write("empty-ca.pem", "no certificates here\n")
        settings.tls?.caFile = empty
        let server = HTTPServer(settings: settings, pipeline: FakePipeline(.hold), logger: TestServer.logger)

        do {
            try server.start()
            Issue.record("start should have failed")
        } catch {
            guard case .tlsCredentialsInvalid(let reason) = error else {
                Issue.record("unexpected error: \(error)")
                return
            }
            #expect(reason.hasPrefix(empty))
        }
    }

    @Test func tlsBindFailureStopsThePlainListenerToo() throws {
        let pki = try TestPKI()
        let (first, _) = try TestServer.start(FakePipeline(.completeInline(.success(.stored))))
        defer { first.stop() }
        let taken = ListenAddress(host: "127.0.0.1", port: first.boundPorts[0])
        var settings = TestServer.secureSettings(pki: pki)
        settings.tls?.listen = [taken]
        let server = HTTPServer(settings: settings, pipeline: FakePipeline(.hold), logger: TestServer.logger)

        #expect(throws: HTTPServerError.bindFailed(address: taken, reason: "Address already in use")) {
            try server.start()
        }
        // The plain port it had bound is closed again.
        let plainPort = try #require(server.boundPorts.first)
        #expect(throws: CurlError.self) { try Curl.run(["--data-binary", "x", "http://127.0.0.1:\(plainPort)/a"]) }
    }
}
