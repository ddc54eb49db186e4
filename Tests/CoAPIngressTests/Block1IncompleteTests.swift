import Foundation
import Testing
@testable import CoAPIngress

/// RFC 7959 §2.9.2: a Block1 transfer whose earlier blocks never came is
/// 4.08 Request Entity Incomplete, with nothing handed to the pipeline.
/// coap-client always starts at block 0, so the datagram is written here.
@Suite("CoAP Block1 incomplete")
struct Block1IncompleteTests {
    @Test("a last Block1 block (num 1) without block 0 is answered 4.08 and never reaches the pipeline")
    func missingFirstBlock() throws {
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let socket = try RawCoAPSocket(port: server.port)
        defer { socket.close() }
        // CON POST, token D1, Uri-Path "a", Block1 (option 27: delta 16 =
        // 13 + 3) num 1, M 0, SZX 0 (16 bytes), payload "x".
        socket.send([0x41, 0x02, 0x31, 0x32, 0xD1, 0xB1, 0x61, 0xD1, 0x03, 0x10, 0xFF, 0x78])
        let answers = socket.receive(1)
        let answer = try #require(answers.first, "no answer")
        // ACK with the request's MID and token, code 4.08 (0x88).
        #expect(Array(answer.prefix(5)) == [0x61, 0x88, 0x31, 0x32, 0xD1], "\(answer)")
        #expect(pipeline.requests.isEmpty)
    }
}
