#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GatewayCore
@testable import HTTPIngress
import Synchronization
import Testing

/// The admin listener over a live loopback socket, answered by curl. The
/// routing is a test double here; the gateway's own routes are tested in
/// GatewayRuntimeTests.
@Suite("Admin listener over a live socket")
struct AdminServerTests {
    /// Answers /healthz and 404 otherwise, and records what it was asked.
    final class Routes: Sendable {
        let seen = Mutex<[AdminRequest]>([])

        func respond(_ request: AdminRequest) -> AdminResponse {
            seen.withLock { $0.append(request) }
            switch request.path {
            case "/healthz": return AdminResponse(status: 200, text: "ok\n")
            case "/metrics": return AdminResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array("a 1\n".utf8))
            default: return AdminResponse(status: 404, text: "not found\n")
            }
        }
    }

    static let loopback = ListenAddress(host: "127.0.0.1", port: 0)

    static func start(_ routes: Routes, listen: [ListenAddress] = [loopback]) throws -> (AdminServer, String) {
        let server = AdminServer(listen: listen, logger: TestServer.logger) { routes.respond($0) }
        try server.start()
        return (server, "http://127.0.0.1:\(server.boundPorts[0])")
    }

    @Test func getIsAnsweredByTheHandler() throws {
        let routes = Routes()
        let (server, base) = try Self.start(routes)
        defer { server.stop() }

        let response = try Curl.run(["\(base)/healthz"])
        #expect(response.status == 200)
        #expect(response.body == "ok\n")
        #expect(response.headers["content-type"] == "text/plain; charset=utf-8")
        #expect(routes.seen.withLock { $0 } == [AdminRequest(method: "GET", path: "/healthz")])

        let metrics = try Curl.run(["\(base)/metrics"])
        #expect(metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(metrics.body == "a 1\n")
    }

    @Test func unknownPathGetsTheHandlersAnswer() throws {
        let (server, base) = try Self.start(Routes())
        defer { server.stop() }
        let response = try Curl.run(["\(base)/nothing/here"])
        #expect(response.status == 404)
        #expect(response.body == "not found\n")
    }

    @Test func headSendsTheHeadersWithoutTheBody() throws {
        let routes = Routes()
        let (server, base) = try Self.start(routes)
        defer { server.stop() }

        let response = try Curl.run(["--head", "\(base)/healthz"])
        #expect(response.status == 200)
        #expect(response.headers["content-length"] == "3")
        #expect(response.body == "")
        #expect(routes.seen.withLock { $0 } == [AdminRequest(method: "HEAD", path: "/healthz")])
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
    func otherMethodsAre405WithAllow(method: String) throws {
        let routes = Routes()
        let (server, base) = try Self.start(routes)
        defer { server.stop() }

        let response = try Curl.run(["--request", method, "\(base)/healthz"])
        #expect(response.status == 405)
        #expect(response.headers["allow"] == "GET, HEAD")
        #expect(response.body == "method not allowed; allowed: GET, HEAD\n")
        #expect(routes.seen.withLock { $0 }.isEmpty)
    }

    @Test func aBodyIsIgnored() throws {
        let (server, base) = try Self.start(Routes())
        defer { server.stop() }
        // Small (sent at once) and large (curl waits for 100-continue, which
        // never comes because the answer is already there).
        for size in [10, 100_000] {
            let body = String(repeating: "x", count: size)
            let response = try Curl.run(["--data-binary", body, "\(base)/healthz"])
            #expect(response.status == 405)
        }
        #expect(try Curl.run(["\(base)/healthz"]).status == 200)
    }

    @Test func theQueryStringIsNotPartOfThePath() throws {
        let routes = Routes()
        let (server, base) = try Self.start(routes)
        defer { server.stop() }
        #expect(try Curl.run(["\(base)/healthz?verbose=1"]).status == 200)
        #expect(routes.seen.withLock { $0 }.map(\.path) == ["/healthz"])
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        let (server, base) = try Self.start(Routes())
        defer { server.stop() }
        // curl reuses the connection for URLs given together.
        let output = try Curl(["\(base)/healthz", "\(base)/healthz", "\(base)/metrics"], includeHeaders: false).finishRaw()
        #expect(output == "ok\nok\na 1\n")
    }

    /// The per-IP limit (8) is set: a ninth connection from 127.0.0.1 is
    /// closed at once, and slots come back when connections close.
    @Test func connectionsPerAddressAreLimited() throws {
        let (server, base) = try Self.start(Routes())
        defer { server.stop() }
        let port = server.boundPorts[0]
        var idle = (0..<8).compactMap { _ in Self.connect(port: port) }
        #expect(idle.count == 8)
        // MHD must have accepted all eight before a ninth is refused; on a
        // busy machine (the whole suite starts at once, each probe spawns a
        // curl) that can take seconds, so ask until it is.
        var refused = false
        let acceptDeadline = Date().addingTimeInterval(30)
        while !refused && Date() < acceptDeadline {
            Thread.sleep(forTimeInterval: 0.2)
            do { _ = try Curl.run(["\(base)/healthz"]) } catch is CurlError { refused = true }
        }
        #expect(refused, "a ninth connection from 127.0.0.1 was still served after 30 s")
        for socket in idle { close(socket) }
        idle = []
        // MHD frees the slots once its thread has seen the closes; on a busy
        // machine that can take longer than a moment.
        var status: Int?
        let deadline = Date().addingTimeInterval(30)
        while status != 200 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            status = try? Curl.run(["\(base)/healthz"]).status
        }
        #expect(status == 200)
    }

    @Test func everyAddressIsBoundInOrder() throws {
        let routes = Routes()
        let (server, _) = try Self.start(routes, listen: [Self.loopback, Self.loopback])
        defer { server.stop() }
        let ports = server.boundPorts
        #expect(ports.count == 2)
        #expect(ports[0] != ports[1] && !ports.contains(0))
        for port in ports {
            #expect(try Curl.run(["http://127.0.0.1:\(port)/healthz"]).status == 200)
        }
    }

    @Test(.enabled(if: TestServer.ipv6LoopbackAvailable, "needs ::1"))
    func ipv6Loopback() throws {
        let server = AdminServer(listen: [ListenAddress(host: "::1", port: 0)], logger: TestServer.logger) { _ in
            AdminResponse(status: 200, text: "ok\n")
        }
        try server.start()
        defer { server.stop() }
        #expect(try Curl.run(["http://[::1]:\(server.boundPorts[0])/healthz"]).status == 200)
    }

    @Test func stopClosesTheListenerAndIsIdempotent() throws {
        let (server, base) = try Self.start(Routes())
        #expect(try Curl.run(["\(base)/healthz"]).status == 200)
        server.stop()
        server.stop()
        #expect(throws: CurlError.self) { try Curl.run(["\(base)/healthz"]) }
    }

    @Test func droppingTheServerStopsIt() throws {
        var base = ""
        do {
            let (server, url) = try Self.start(Routes())
            base = url
            #expect(try Curl.run(["\(base)/healthz"]).status == 200)
            _ = server
        }
        #expect(throws: CurlError.self) { try Curl.run(["\(base)/healthz"]) }
    }

    @Test func bindFailureNamesTheAddressAndTheSystemError() throws {
        let (first, _) = try Self.start(Routes())
        defer { first.stop() }
        let taken = ListenAddress(host: "127.0.0.1", port: first.boundPorts[0])

        let second = AdminServer(listen: [Self.loopback, taken], logger: TestServer.logger) { _ in
            AdminResponse(status: 200, text: "")
        }
        let expected = AdminServerError.bindFailed(address: taken, reason: "Address already in use")
        #expect(throws: expected) { try second.start() }
        #expect(second.boundPorts.isEmpty)
        #expect("\(expected)" == "cannot listen for admin requests on 127.0.0.1:\(taken.port): Address already in use")
        // A failed start counts as the one start.
        #expect(throws: AdminServerError.alreadyStarted) { try second.start() }
    }

    @Test func startingTwiceIsAnError() throws {
        let (server, _) = try Self.start(Routes())
        defer { server.stop() }
        #expect(throws: AdminServerError.alreadyStarted) { try server.start() }
    }

    @Test func invalidListenHostIsReported() {
        let bad = ListenAddress(host: "localhost", port: 9683)
        let server = AdminServer(listen: [bad], logger: TestServer.logger) { _ in AdminResponse(status: 200, text: "") }
        #expect(throws: AdminServerError.invalidAddress(bad)) { try server.start() }
    }

    /// A plain TCP connection to 127.0.0.1 that sends nothing.
    static func connect(port: UInt16) -> Int32? {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(socket)
            return nil
        }
        return socket
    }
}
