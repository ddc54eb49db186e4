import Foundation
import GatewayCore
@testable import HTTPIngress
import Testing

@Suite("Start, bind and graceful stop")
struct LifecycleTests {
    @Test func gracefulStopAnswersASuspendedRequest() throws {
        let pipeline = FakePipeline(.hold)
        // A drain timeout far beyond every wait below: the request must be
        // answered by its completion, and stop() return once it is, however
        // slowly a loaded machine gets there.
        let (server, base) = try TestServer.start(pipeline, drainTimeout: .seconds(30))

        let client = try Curl(["--data-binary", "x", "\(base)/a"])
        #expect(pipeline.waitForRequests(1))
        server.stopAccepting()
        // A new connection is closed at once, without a request reaching
        // the pipeline.
        #expect(throws: CurlError.self) { try Curl.run(["--data-binary", "y", "\(base)/b"]) }
        #expect(pipeline.requests.count == 1)

        let stopped = DispatchSemaphore(value: 0)
        Thread { server.stop(); stopped.signal() }.start()
        // stop() waits for the suspended request instead of tearing it down.
        #expect(stopped.wait(timeout: .now() + 0.2) == .timedOut)
        pipeline.completeHeld(.success(.stored))

        let response = try client.finish()
        #expect(response.status == 202)
        #expect(response.headers["connection"] == "close")
        #expect(stopped.wait(timeout: .now() + 10) == .success)
    }

    @Test func stopAnswers503WhenTheCommitNeverComes() throws {
        let pipeline = FakePipeline(.hold)
        let (server, base) = try TestServer.start(pipeline, drainTimeout: .milliseconds(200))

        let client = try Curl(["--data-binary", "x", "\(base)/a"])
        #expect(pipeline.waitForRequests(1))
        server.stop()

        let response = try client.finish()
        #expect(response.status == 503)
        #expect(response.headers["retry-after"] == "5")
        #expect(response.body == "gateway is shutting down; retry later\n")
        // A completion after the stop is ignored, not a crash.
        pipeline.completeHeld(.success(.stored))
    }

    @Test func stoppedServerRefusesConnections() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, base) = try TestServer.start(pipeline)
        #expect(try Curl.run(["--data-binary", "x", "\(base)/a"]).status == 202)
        server.stop()
        server.stop()  // idempotent
        #expect(throws: CurlError.self) { try Curl.run(["--data-binary", "x", "\(base)/a"]) }
    }

    @Test func bindFailureNamesTheAddressAndTheSystemError() throws {
        let (first, _) = try TestServer.start(FakePipeline(.completeInline(.success(.stored))))
        defer { first.stop() }
        let taken = ListenAddress(host: "127.0.0.1", port: first.boundPorts[0])

        let second = HTTPServer(
            settings: TestServer.settings(listen: [taken]),
            pipeline: FakePipeline(.completeInline(.success(.stored))), logger: TestServer.logger
        )
        #expect(throws: HTTPServerError.bindFailed(address: taken, reason: "Address already in use")) {
            try second.start()
        }
        let text = "\(HTTPServerError.bindFailed(address: taken, reason: "Address already in use"))"
        #expect(text == "cannot listen for HTTP on 127.0.0.1:\(taken.port): Address already in use")
    }

    @Test func failedStartStopsTheDaemonsAlreadyStarted() throws {
        let (first, _) = try TestServer.start(FakePipeline(.completeInline(.success(.stored))))
        defer { first.stop() }
        let taken = ListenAddress(host: "127.0.0.1", port: first.boundPorts[0])
        let free = ListenAddress(host: "127.0.0.1", port: 0)

        let server = HTTPServer(
            settings: TestServer.settings(listen: [free, taken]),
            pipeline: FakePipeline(.completeInline(.success(.stored))), logger: TestServer.logger
        )
        #expect(throws: HTTPServerError.self) { try server.start() }
        #expect(server.boundPorts.isEmpty)
    }

    @Test func everyListenAddressIsBoundInOrder() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let server = HTTPServer(
            settings: TestServer.settings(listen: [
                ListenAddress(host: "127.0.0.1", port: 0), ListenAddress(host: "127.0.0.1", port: 0),
            ]),
            pipeline: pipeline, logger: TestServer.logger
        )
        try server.start()
        defer { server.stop() }
        let ports = server.boundPorts
        #expect(ports.count == 2)
        #expect(!ports.contains(0))
        #expect(ports[0] != ports[1])
        for port in ports {
            #expect(try Curl.run(["--data-binary", "4", "http://127.0.0.1:\(port)/a"]).status == 202)
        }
    }

    @Test(.enabled(if: TestServer.ipv6LoopbackAvailable, "needs ::1"))
    func ipv6ListenAddressAndPeer() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let server = HTTPServer(
            settings: TestServer.settings(listen: [ListenAddress(host: "::1", port: 0)]),
            pipeline: pipeline, logger: TestServer.logger
        )
        try server.start()
        defer { server.stop() }
        #expect(try Curl.run(["--data-binary", "6", "http://[::1]:\(server.boundPorts[0])/a"]).status == 202)
        #expect(pipeline.requests.first?.peer.hasPrefix("[::1]:") == true)
    }

    @Test func startingTwiceIsAnError() throws {
        let (server, _) = try TestServer.start(FakePipeline(.completeInline(.success(.stored))))
        defer { server.stop() }
        #expect(throws: HTTPServerError.alreadyStarted) { try server.start() }
    }

    @Test func invalidListenHostIsReported() {
        let bad = ListenAddress(host: "localhost", port: 0)
        let server = HTTPServer(
            settings: TestServer.settings(listen: [bad]),
            pipeline: FakePipeline(.completeInline(.success(.stored))), logger: TestServer.logger
        )
        #expect(throws: HTTPServerError.invalidAddress(bad)) { try server.start() }
    }

    @Test func clientThatGaveUpIsReleasedOnceTheCompletionComes() throws {
        let pipeline = FakePipeline(.hold)
        let (server, base) = try TestServer.start(pipeline, drainTimeout: .seconds(20))

        let client = try Curl(["--max-time", "0.2", "--data-binary", "x", "\(base)/a"])
        #expect(pipeline.waitForRequests(1))
        #expect(throws: CurlError.self) { try client.finish() }  // timed out while suspended
        // MHD notices the closed socket only after the resume; then the
        // request completes and stop() has nothing left to wait for.
        pipeline.completeHeld(.success(.stored))
        let started = Date()
        server.stop()
        // Not the 20 s drain timeout: nothing was left to wait for.
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func droppingTheServerStopsIt() throws {
        var base = ""
        do {
            let (server, url) = try TestServer.start(FakePipeline(.completeInline(.success(.stored))))
            base = url
            #expect(try Curl.run(["--data-binary", "x", "\(base)/a"]).status == 202)
            _ = server
        }
        #expect(throws: CurlError.self) { try Curl.run(["--data-binary", "x", "\(base)/a"]) }
    }
}
