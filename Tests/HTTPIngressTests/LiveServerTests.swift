import Foundation
import GatewayCore
@testable import HTTPIngress
import Testing

/// Real HTTP, from curl, to a server on a loopback port of its own.
@Suite("HTTP ingress over a live socket")
struct LiveServerTests {
    @Test func answers202OnlyAfterTheCompletionFires() throws {
        let pipeline = FakePipeline(.hold)
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let client = try Curl(["--data-binary", "21.5", "\(base)/sensors/t1"])
        #expect(pipeline.waitForRequests(1))
        Thread.sleep(forTimeInterval: 0.2)
        #expect(client.isRunning, "the answer must wait for the completion")
        pipeline.completeHeld(.success(.stored))
        let response = try client.finish()

        #expect(response.status == 202)
        #expect(response.body == "accepted\n")
        #expect(response.headers["content-type"] == "text/plain; charset=utf-8")
        #expect(pipeline.requests.first?.payload == Array("21.5".utf8))
    }

    /// The per-connection pool is 8 KiB (IngressDaemonSettings): request
    /// heads of a few KiB and bodies far larger than the pool still pass;
    /// a head that cannot fit is MHD's 431, and never reaches the pipeline.
    @Test func headsOfAFewKiBAndLargeBodiesFitTheConnectionPool() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, base) = try TestServer.start(pipeline, maxBody: 256 * 1024)
        defer { server.stop() }

        let header = "X-Padding: " + String(repeating: "p", count: 4000)
        let body = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-body-\(UUID().uuidString)")
        try Data(repeating: UInt8(ascii: "b"), count: 200 * 1024).write(to: body)
        defer { try? FileManager.default.removeItem(at: body) }
        let ok = try Curl.run(["-H", header, "-H", "Authorization: Bearer " + String(repeating: "t", count: 64), "--data-binary", "@\(body.path)", "\(base)/a"])
        #expect(ok.status == 202)
        #expect(pipeline.requests.first?.payload.count == 200 * 1024)

        let tooLarge = try Curl.run(["-H", "X-Padding: " + String(repeating: "p", count: 12_000), "--data-binary", "x", "\(base)/a"])
        #expect(tooLarge.status == 431)
        #expect(pipeline.requests.count == 1)
    }

    @Test func completionFromAnotherThreadAfterADelay() throws {
        let pipeline = FakePipeline(.completeLater(seconds: 0.1, .success(.stored)))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let started = Date()
        let response = try Curl.run(["--data-binary", "x", "\(base)/a"])
        #expect(response.status == 202)
        #expect(Date().timeIntervalSince(started) >= 0.1)
        #expect(pipeline.completions == 1)
    }

    @Test func completionInsideAcceptIsAnsweredWithoutSuspending() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        for _ in 0..<3 {
            let response = try Curl.run(["--data-binary", "x", "\(base)/a"])
            #expect(response.status == 202)
            #expect(response.body == "accepted\n")
        }
    }

    @Test func answeredAtOnceIs202WithoutACompletion() throws {
        let pipeline = FakePipeline(.answerAtOnce(.stored))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let response = try Curl.run(["--data-binary", "x", "\(base)/a"])
        #expect(response.status == 202)
        #expect(pipeline.completions == 0)
    }

    @Test func deliveredIs200() throws {
        let pipeline = FakePipeline(.completeLater(seconds: 0.05, .success(.delivered)))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let response = try Curl.run(["--data-binary", "x", "\(base)/a"])
        #expect(response.status == 200)
        #expect(response.body == "delivered\n")
    }

    @Test func deliveryTimeoutIs504() throws {
        let pipeline = FakePipeline(.completeLater(seconds: 0.05, .failure(.timeout(reason: "not yet acknowledged by the broker; the message stays queued"))))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let response = try Curl.run(["--data-binary", "x", "\(base)/a"])
        #expect(response.status == 504)
        #expect(response.body.contains("stays queued"))
    }

    @Test func failedCompletionMapsLikeARejection() throws {
        let pipeline = FakePipeline(.completeLater(seconds: 0.02, .failure(.unavailable(retryAfterSeconds: 9, reason: "gateway storage is full"))))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let response = try Curl.run(["--data-binary", "x", "\(base)/a"])
        #expect(response.status == 503)
        #expect(response.headers["retry-after"] == "9")
        #expect(response.body == "gateway storage is full\n")
    }

    @Test(arguments: [
        (IngressRejection.notFound(reason: "no mapping for /a"), 404),
        (.methodNotAllowed(allowed: [.post, .put], reason: "method PATCH not allowed"), 405),
        (.badRequest(reason: "value of {id} cannot be used in a topic"), 400),
        (.payloadTooLarge(limit: 5, reason: "too big"), 413),
        (.unavailable(retryAfterSeconds: 5, reason: "gateway queue is full; retry later"), 503),
        (.internalError(reason: "broken"), 500),
    ])
    func rejectionIsAnsweredAtOnce(rejection: IngressRejection, status: Int) throws {
        let pipeline = FakePipeline(.reject(rejection))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let response = try Curl.run(["--data-binary", "x", "\(base)/a"])
        #expect(response.status == status)
        #expect(response.body == rejection.reason + "\n")
        #expect(response.headers["content-type"] == "text/plain; charset=utf-8")
        switch rejection {
        case .methodNotAllowed:
            #expect(response.headers["allow"] == "POST, PUT")
        case .unavailable:
            #expect(response.headers["retry-after"] == "5")
        default:
            #expect(response.headers["allow"] == nil)
            #expect(response.headers["retry-after"] == nil)
        }
    }

    @Test func contentLengthOverMaxBodyIs413BeforeTheBodyIsRead() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, base) = try TestServer.start(pipeline, maxBody: 16)
        defer { server.stop() }

        // With Expect, curl sends the body only after a 100 Continue, which
        // MHD does not send once a response is queued.
        let response = try Curl.run([
            "-H", "Expect: 100-continue", "--data-binary", String(repeating: "x", count: 17), "\(base)/a",
        ])
        #expect(response.status == 413)
        #expect(response.body == "request body is larger than 16 bytes\n")
        #expect(pipeline.requests.isEmpty)

        let fits = try Curl.run(["--data-binary", String(repeating: "y", count: 16), "\(base)/a"])
        #expect(fits.status == 202)
        #expect(pipeline.requests.first?.payload.count == 16)
    }

    @Test func chunkedBodyPastMaxBodyIs413() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, base) = try TestServer.start(pipeline, maxBody: 100)
        defer { server.stop() }

        let response = try Curl.run([
            "-H", "Transfer-Encoding: chunked", "-H", "Expect:",
            "--data-binary", String(repeating: "z", count: 5000), "\(base)/a",
        ])
        #expect(response.status == 413)
        #expect(pipeline.requests.isEmpty)
    }

    @Test func chunkedBodyWithinMaxBodyIsPassedOn() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, base) = try TestServer.start(pipeline, maxBody: 100)
        defer { server.stop() }

        let body = String(repeating: "c", count: 100)
        let response = try Curl.run(["-H", "Transfer-Encoding: chunked", "-H", "Expect:", "--data-binary", body, "\(base)/a"])
        #expect(response.status == 202)
        #expect(pipeline.requests.first?.payload == Array(body.utf8))
    }

    @Test func pathSegmentsArePercentDecodedOneByOne() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let response = try Curl.run(["--path-as-is", "--data-binary", "x", "\(base)/a%2Fb/c%20d/%C3%A9?ignored=%zz"])
        #expect(response.status == 202)
        #expect(pipeline.requests.first?.path == ["a/b", "c d", "é"])
    }

    @Test func invalidPercentEncodingIs400WithoutThePipeline() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let response = try Curl.run(["--path-as-is", "--data-binary", "x", "\(base)/sensors/%zz"])
        #expect(response.status == 400)
        #expect(response.body == "invalid percent-encoding in path\n")
        #expect(pipeline.requests.isEmpty)
    }

    @Test func methodContentTypeAndPeerArePassedThrough() throws {
        let pipeline = FakePipeline(.completeInline(.success(.stored)))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let put = try Curl.run(["-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", "{\"t\":1}", "\(base)/d/1"])
        #expect(put.status == 202)
        let patch = try Curl.run(["-X", "PATCH", "--data-binary", "x", "-H", "Content-Type:", "\(base)/d/2"])
        #expect(patch.status == 202)

        let requests = pipeline.requests
        #expect(requests.count == 2)
        #expect(requests.first?.method == .put)
        #expect(requests.first?.contentType == "application/json")
        #expect(requests.first?.ingress == .http)
        #expect(requests.first?.path == ["d", "1"])
        #expect(requests.first?.peer.hasPrefix("127.0.0.1:") == true)
        #expect(requests.last?.method == .patch)
        #expect(requests.last?.contentType == nil)
    }

    @Test func methodsWithoutAMappingAreRoutedToDecide404Or405() throws {
        let pipeline = FakePipeline(.route(path: ["sensors"], methods: [.post, .put]))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let head = try Curl.run(["--head", "\(base)/sensors"])
        #expect(head.status == 405)
        #expect(head.headers["allow"] == "POST, PUT")

        let options = try Curl.run(["-X", "OPTIONS", "\(base)/sensors"])
        #expect(options.status == 405)
        #expect(options.headers["allow"] == "POST, PUT")
        #expect(options.body == "method OPTIONS not allowed; allowed: POST, PUT\n")

        let unknownPath = try Curl.run(["-X", "OPTIONS", "\(base)/nothing"])
        #expect(unknownPath.status == 404)

        let get = try Curl.run(["\(base)/sensors"])
        #expect(get.status == 405)
        #expect(pipeline.requests.map(\.method) == [RoutedMethod.standIn, RoutedMethod.standIn, RoutedMethod.standIn, .get])
    }

    @Test func keepAliveConnectionCarriesSeveralSuspendedRequests() throws {
        let pipeline = FakePipeline(.completeLater(seconds: 0.02, .success(.stored)))
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        // One curl, three URLs: the connection is reused, so each request
        // gets a fresh context after the previous one was suspended and resumed.
        let output = try Curl(
            ["--write-out", "%{http_code} %{num_connects}\\n", "--data-binary", "k"]
                + (1...3).flatMap { ["--output", "/dev/null", "\(base)/a/\($0)"] },
            includeHeaders: false
        ).finishRaw()
        #expect(output == "202 1\n202 0\n202 0\n")
        #expect(pipeline.requests.map(\.path) == [["a", "1"], ["a", "2"], ["a", "3"]])
    }

    @Test func manyConcurrentRequestsRacingTheirCompletions() throws {
        let pipeline = FakePipeline(.completeRandomly)
        let (server, base) = try TestServer.start(pipeline)
        defer { server.stop() }

        let count = 60
        let output = try Curl(
            ["--parallel", "--parallel-max", "20", "--write-out", "%{http_code}\\n", "--data-binary", "p"]
                + (1...count).flatMap { ["--output", "/dev/null", "\(base)/load/\($0)"] },
            includeHeaders: false
        ).finishRaw()
        #expect(output.split(separator: "\n") == Array(repeating: "202", count: count))
        #expect(pipeline.requests.count == count)
    }
}
