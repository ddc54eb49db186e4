import Foundation
import GatewayCore
import Testing
@testable import CoAPIngress

@Suite("CoAP server with coap-client")
struct CoAPServerTests {
    @Test("a CON POST is answered 2.04 on its ACK (piggybacked), only after its commit")
    func acceptedConfirmable() throws {
        let pipeline = FakePipeline(.complete(after: 0.2, .success(.stored)))
        // A long empty-ACK delay, so a busy machine cannot make it separate.
        let server = try TestServer.start(pipeline, emptyAckDelay: 3)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-t", "50", "-e", "{\"t\":21.5}", "coap://127.0.0.1:\(server.port)/sensors/dev-1/temperature"])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
        #expect(result.type == "ACK", "\(result.stdout)\(result.stderr)")  // no empty ACK before it
        #expect(result.responses.count == 1, "\(result.responses)")
        #expect(result.elapsed >= 0.2)
        let request = try #require(pipeline.requests.first)
        #expect(pipeline.requests.count == 1)
        #expect(request.ingress == .coap)
        #expect(request.path == ["sensors", "dev-1", "temperature"])
        #expect(request.method == .post)
        #expect(request.contentType == "application/json")
        #expect(request.payload == Array("{\"t\":21.5}".utf8))
        #expect(request.peer.hasPrefix("127.0.0.1:"))
    }

    @Test("a CON POST whose commit takes longer than the empty-ACK delay gets an empty ACK, then a separate CON 2.04")
    func slowCommitGetsSeparateResponse() throws {
        let pipeline = FakePipeline(.complete(after: 1.2, .success(.stored)))
        let server = try TestServer.start(pipeline, emptyAckDelay: 0.3)
        defer { server.stop() }
        let socket = try RawCoAPSocket(port: server.port)
        defer { socket.close() }
        socket.send(RawCoAPSocket.post(messageID: 0x2345, token: [0xC1, 0xC2]))
        let answers = socket.receive(2)
        #expect(answers.count == 2, "answers: \(answers)")
        // First an empty ACK for the request's MID, then a CON 2.04 with its token.
        #expect(answers.first == [0x60, 0x00, 0x23, 0x45], "\(answers)")
        let separate = try #require(answers.last)
        #expect(separate.count >= 6 && separate[0] == 0x42 && separate[1] == 0x44, "\(separate)")
        #expect(Array(separate.dropFirst(4).prefix(2)) == [0xC1, 0xC2], "\(separate)")
        #expect(pipeline.requests.count == 1)
    }

    @Test("a CON retransmitted while its commit runs is taken once and answered once")
    func retransmissionWhilePending() throws {
        let pipeline = FakePipeline(.complete(after: 0.2, .success(.stored)))
        // A long empty-ACK delay, so a busy machine cannot make it separate.
        let server = try TestServer.start(pipeline, emptyAckDelay: 3)
        defer { server.stop() }
        let socket = try RawCoAPSocket(port: server.port)
        defer { socket.close() }
        let request = RawCoAPSocket.post(messageID: 0x1234, token: [0xA1, 0xB2])
        socket.send(request)
        usleep(50_000)
        socket.send(request)
        let answers = socket.receive(1)
        #expect(pipeline.requests.count == 1, "the retransmission was taken as a new message")
        #expect(answers.count == 1, "answers: \(answers)")
        let answer = try #require(answers.first)
        // ACK (type 2), token length 2, code 2.04, the request's MID and token.
        #expect(Array(answer.prefix(6)) == [0x62, 0x44, 0x12, 0x34, 0xA1, 0xB2], "\(answer)")
    }

    @Test("a CON retransmitted after its answer (the ACK was lost) gets the same answer and is not taken again")
    func retransmissionAfterAnswer() throws {
        let pipeline = FakePipeline(.complete(after: 0.05, .success(.stored)))
        let server = try TestServer.start(pipeline, emptyAckDelay: 3)
        defer { server.stop() }
        let socket = try RawCoAPSocket(port: server.port)
        defer { socket.close() }
        let request = RawCoAPSocket.post(messageID: 0x3456, token: [0xD1, 0xD2, 0xD3])
        socket.send(request)
        let first = socket.receive(1)
        socket.send(request)
        let second = socket.receive(1)
        #expect(pipeline.requests.count == 1, "the retransmission was stored again")
        #expect(first.count == 1 && second.count == 1, "first: \(first), second: \(second)")
        // ACK, 2.04, the request's MID and token, both times.
        #expect(first.first.map { Array($0.prefix(7)) } == [0x63, 0x44, 0x34, 0x56, 0xD1, 0xD2, 0xD3], "\(first)")
        #expect(second.first == first.first, "the repeated answer differs: \(second) vs \(first)")

        // Another message ID from the same peer is a new message.
        socket.send(RawCoAPSocket.post(messageID: 0x3457, token: [0xD1, 0xD2, 0xD3]))
        #expect(socket.receive(1).count == 1)
        #expect(pipeline.requests.count == 2)
    }

    @Test("a NON POST gets a NON 2.04")
    func acceptedNonConfirmable() throws {
        let pipeline = FakePipeline(.complete(after: 0.05, .success(.stored)))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let result = try coapClient(["-N", "-m", "put", "-e", "x", "coap://127.0.0.1:\(server.port)/a"])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
        #expect(result.type == "NON")
        #expect(pipeline.requests.first?.method == .put)
    }

    @Test("a completion that arrives before accept returns is still answered")
    func immediateCompletion() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-e", "x", "coap://127.0.0.1:\(server.port)/a"])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
    }

    @Test("a request answered at once (QoS 0 queued) gets a piggybacked 2.04")
    func answeredAtOnce() throws {
        let pipeline = FakePipeline(.answerAtOnce)
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-e", "x", "coap://127.0.0.1:\(server.port)/a"])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
        #expect(result.type == "ACK")
        #expect(pipeline.requests.count == 1)
    }

    @Test("a delivery timeout after the empty ACK is a separate 5.04")
    func deliveryTimeout() throws {
        let pipeline = FakePipeline(.complete(after: 0.8, .failure(.timeout(reason: "not yet acknowledged by the broker"))))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-e", "x", "coap://127.0.0.1:\(server.port)/a"])
        #expect(result.code == "5.04", "\(result.stdout)\(result.stderr)")
        #expect(result.type == "CON")
        #expect(result.last.contains("not yet acknowledged"))
    }

    @Test("a failed commit is answered with the failure's code")
    func failedCommit() throws {
        let pipeline = FakePipeline(.complete(after: 0.05, .failure(.internalError(reason: "message could not be stored"))))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-e", "x", "coap://127.0.0.1:\(server.port)/a"])
        #expect(result.code == "5.00")
        #expect(result.last.contains("message could not be stored"))
    }

    @Test("rejections map to CoAP codes with a diagnostic payload", arguments: [
        (IngressRejection.notFound(reason: "no mapping for /x"), "4.04", ""),
        (.methodNotAllowed(allowed: [.post], reason: "method PUT not allowed"), "4.05", ""),
        (.badRequest(reason: "value of {device} cannot be used"), "4.00", ""),
        (.unavailable(retryAfterSeconds: 7, reason: "gateway queue is full"), "5.03", "Max-Age:7"),
        (.internalError(reason: "boom"), "5.00", ""),
        (.timeout(reason: "not yet acknowledged by the broker"), "5.04", ""),
    ])
    func rejections(_ rejection: IngressRejection, _ code: String, _ option: String) throws {
        let pipeline = FakePipeline(.reject(rejection))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-e", "1", "coap://127.0.0.1:\(server.port)/x"])
        #expect(result.code == code, "\(result.stdout)\(result.stderr)")
        #expect(result.type == "ACK")  // piggybacked
        #expect(result.last.contains(rejection.reason))
        if !option.isEmpty { #expect(result.last.contains(option)) }
    }

    @Test("a body over max_body in one datagram is 4.13 with Size1, and never reaches the pipeline")
    func oversizedSingleDatagram() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let server = try TestServer.start(pipeline, maxBody: 32)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-e", String(repeating: "x", count: 100), "coap://127.0.0.1:\(server.port)/a"])
        #expect(result.code == "4.13", "\(result.stdout)\(result.stderr)")
        #expect(result.last.contains("Size1:32"))
        #expect(pipeline.requests.isEmpty)
    }

    @Test("a Block1 transfer is reassembled and answered once")
    func blockwiseBody() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let server = try TestServer.start(pipeline, maxBody: 4096)
        defer { server.stop() }
        let body = (0..<3000).map { _ in UInt8.random(in: UInt8(ascii: "a")...UInt8(ascii: "z")) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("coap-body-\(UUID().uuidString)")
        try Data(body).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try coapClient(["-m", "post", "-b", "256", "-f", file.path, "coap://127.0.0.1:\(server.port)/big"])
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
        #expect(pipeline.requests.count == 1)
        #expect(pipeline.requests.first?.payload == body)
    }

    @Test("a Block1 transfer past max_body is refused with 4.13")
    func blockwiseTooLarge() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let server = try TestServer.start(pipeline, maxBody: 1000)
        defer { server.stop() }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("coap-body-\(UUID().uuidString)")
        try Data(repeating: 0x41, count: 3000).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try coapClient(["-m", "post", "-b", "256", "-f", file.path, "coap://127.0.0.1:\(server.port)/big"])
        #expect(result.code == "4.13", "\(result.stdout)\(result.stderr)")
        #expect(pipeline.requests.isEmpty)
    }

    @Test("a Uri-Path that is not UTF-8 is 4.00 without reaching the pipeline")
    func invalidUTF8Path() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-e", "1", "coap://127.0.0.1:\(server.port)/a/%FF%FE"])
        #expect(result.code == "4.00", "\(result.stdout)\(result.stderr)")
        #expect(pipeline.requests.isEmpty)
    }

    @Test("after stopAccepting new requests get 5.03 with Max-Age")
    func stopAccepting() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        server.server.stopAccepting()
        Thread.sleep(forTimeInterval: 0.05)
        let result = try coapClient(["-m", "post", "-e", "1", "coap://127.0.0.1:\(server.port)/a"])
        #expect(result.code == "5.03", "\(result.stdout)\(result.stderr)")
        #expect(result.last.contains("Max-Age:"))
        #expect(pipeline.requests.isEmpty)
    }

    @Test("stop waits for a request that is waiting for its commit, and answers it")
    func stopAnswersPending() throws {
        let pipeline = FakePipeline(.complete(after: 0.5, .success(.stored)))
        let server = try TestServer.start(pipeline)
        let port = server.port
        // A thread of its own: the cooperative pool may be busy with other tests.
        let box = ResultBox<CoAPResult>()
        let done = DispatchSemaphore(value: 0)
        Thread {
            box.set(Result { try coapClient(["-m", "post", "-e", "1", "coap://127.0.0.1:\(port)/a"]) })
            done.signal()
        }.start()
        let deadline = Date().addingTimeInterval(5)
        while pipeline.requests.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(pipeline.requests.count == 1)
        server.stop()
        done.wait()
        let result = try box.get()
        #expect(result.code == "2.04", "\(result.stdout)\(result.stderr)")
    }
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Written once before the semaphore is signalled, read after waiting on it.
    private var result: Result<T, Error>?
    func set(_ value: Result<T, Error>) { result = value }
    func get() throws -> T { try result!.get() }
}
