import Foundation
import GatewayCore
import Testing
@testable import CoAPIngress

@Suite("CoAP server with coap-client")
struct CoAPServerTests {
    @Test("accepted POST is answered 2.04 after completion and reaches the pipeline decoded")
    func acceptedPost() throws {
        let pipeline = FakePipeline(.complete(after: 0.2, .success(())))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-t", "50", "-e", "{\"t\":21.5}", "coap://127.0.0.1:\(server.port)/sensors/dev-1/temperature"])
        print("STDOUT", result.stdout, "STDERR", result.stderr, "status", result.status)
        #expect(result.status == 0)
        let requests = pipeline.requests
        #expect(requests.count == 1)
        #expect(requests.first?.path == ["sensors", "dev-1", "temperature"])
        #expect(requests.first?.method == .post)
        #expect(requests.first?.contentType == "application/json")
        #expect(requests.first?.payload == Array("{\"t\":21.5}".utf8))
    }

    @Test("rejections map to CoAP codes with a diagnostic payload")
    func rejections() throws {
        let pipeline = FakePipeline(.reject(.notFound(reason: "no mapping for /x")))
        let server = try TestServer.start(pipeline)
        defer { server.stop() }
        let result = try coapClient(["-m", "post", "-e", "1", "coap://127.0.0.1:\(server.port)/x"])
        print("STDOUT", result.stdout, "STDERR", result.stderr, "status", result.status)
        #expect(result.stderr.contains("4.04") || result.stdout.contains("4.04"))
    }
}
