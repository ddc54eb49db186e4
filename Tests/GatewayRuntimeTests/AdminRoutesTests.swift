import Foundation
import TestSupport
import GatewayCore
@testable import GatewayRuntime
import HTTPIngress
import Logging
import Synchronization
import Testing

/// The admin routes as a pure function, and once through a live listener.
@Suite("Admin routes")
struct AdminRoutesTests {
    static let ready = Readiness(listening: true, outboxWritable: true, upstreamConnected: false)
    static let snapshot = OutboxSnapshot(
        qos0: .init(messages: 2, bytes: 40, oldestAge: 1.5),
        qos1: .init(messages: 7, bytes: 700, oldestAge: 12)
    )

    static func routes(
        _ readiness: Readiness = ready,
        observer: PrometheusObserver = PrometheusObserver()
    ) -> AdminRoutes {
        AdminRoutes(observer: observer, snapshot: { snapshot }, readiness: { readiness })
    }

    static func get(_ path: String, _ routes: AdminRoutes = routes()) -> (status: Int, type: String, body: String) {
        let response = routes.respond(AdminRequest(method: "GET", path: path))
        return (response.status, response.contentType, String(decoding: response.body, as: UTF8.self))
    }

    @Test func healthzSaysTheProcessIsAlive() {
        // Alive even when nothing else is: that is /readyz's business.
        let down = Readiness(listening: false, outboxWritable: false, upstreamConnected: false)
        let answer = Self.get("/healthz", Self.routes(down))
        #expect(answer.status == 200)
        #expect(answer.body == "ok\n")
        #expect(answer.type == "text/plain; charset=utf-8")
    }

    @Test func readyzNeedsListenersAndAWritableOutboxButNotUpstream() {
        var answer = Self.get("/readyz")
        #expect(answer.status == 200)
        #expect(answer.body == "listening: yes\noutbox: writable\nupstream: disconnected\n")
        #expect(answer.type == "text/plain; charset=utf-8")

        answer = Self.get("/readyz", Self.routes(Readiness(listening: true, outboxWritable: true, upstreamConnected: true)))
        #expect(answer.status == 200)
        #expect(answer.body == "listening: yes\noutbox: writable\nupstream: connected\n")

        answer = Self.get("/readyz", Self.routes(Readiness(listening: false, outboxWritable: true, upstreamConnected: true)))
        #expect(answer.status == 503)
        #expect(answer.body == "listening: no\noutbox: writable\nupstream: connected\n")

        answer = Self.get("/readyz", Self.routes(Readiness(listening: true, outboxWritable: false, upstreamConnected: true)))
        #expect(answer.status == 503)
        #expect(answer.body == "listening: yes\noutbox: not writable\nupstream: connected\n")
    }

    @Test func readinessIsAskedAtEveryProbe() {
        let state = Mutex(Self.ready)
        let routes = AdminRoutes(observer: PrometheusObserver(), snapshot: { Self.snapshot }, readiness: { state.withLock { $0 } })
        #expect(Self.get("/readyz", routes).status == 200)
        state.withLock { $0.outboxWritable = false }
        #expect(Self.get("/readyz", routes).status == 503)
    }

    @Test func metricsAreTheObserversTextWithTheSnapshotsGauges() throws {
        let observer = PrometheusObserver()
        observer.requestAnswered(protocol: .coap, outcome: .accepted)
        let answer = Self.get("/metrics", Self.routes(observer: observer))
        #expect(answer.status == 200)
        #expect(answer.type == "text/plain; version=0.0.4; charset=utf-8")
        let lines = Set(answer.body.split(separator: "\n").map(String.init))
        #expect(lines.contains(#"iotgw_requests_total{protocol="coap",outcome="accepted"} 1"#))
        #expect(lines.contains(#"iotgw_outbox_messages{qos="0"} 2.0"#))
        #expect(lines.contains(#"iotgw_outbox_messages{qos="1"} 7.0"#))
        #expect(lines.contains(#"iotgw_outbox_bytes{qos="1"} 700.0"#))
        #expect(lines.contains(#"iotgw_outbox_oldest_age_seconds{qos="1"} 12.0"#))
        _ = try ExpositionParser.parse(answer.body)
    }

    @Test(arguments: ["/", "/metrics/", "/healthz/", "/HEALTHZ", "/readyz/x", "/%6Detrics", "metrics", ""])
    func otherPathsAre404(path: String) {
        let answer = Self.get(path)
        #expect(answer.status == 404)
        #expect(answer.type == "text/plain; charset=utf-8")
    }

    @Test func headIsAnsweredLikeGet() {
        let routes = Self.routes()
        for path in ["/healthz", "/readyz", "/nope"] {
            #expect(routes.respond(AdminRequest(method: "HEAD", path: path)) == routes.respond(AdminRequest(method: "GET", path: path)))
        }
    }

    /// The routes behind a real listener on a loopback port of its own.
    @Test func liveListenerServesTheRoutes() throws {
        let observer = PrometheusObserver()
        observer.messageAccepted(qos: .atLeastOnce)
        let routes = Self.routes(observer: observer)
        var logger = Logger(label: "admin-tests")
        logger.logLevel = .error
        let server = AdminServer(listen: [ListenAddress(host: "127.0.0.1", port: 0)], logger: logger) { routes.respond($0) }
        try server.start()
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.boundPorts[0])"

        let metrics = try curl(["\(base)/metrics"])
        #expect(metrics.contains("HTTP/1.1 200"))
        #expect(metrics.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"))
        #expect(metrics.contains("\n" + #"iotgw_messages_accepted_total{qos="1"} 1"# + "\n"))

        let ready = try curl(["\(base)/readyz"])
        #expect(ready.contains("HTTP/1.1 200"))
        #expect(ready.hasSuffix("\r\n\r\nlistening: yes\noutbox: writable\nupstream: disconnected\n"))

        #expect(try curl(["\(base)/healthz"]).hasSuffix("\r\n\r\nok\n"))
        #expect(try curl(["\(base)/missing"]).contains("HTTP/1.1 404"))
        let post = try curl(["--data", "x", "\(base)/metrics"])
        #expect(post.contains("HTTP/1.1 405"))
        #expect(post.contains("Allow: GET, HEAD"))
    }

    struct CurlFailed: Error {
        var status: Int32
    }

    /// curl's output with the response headers (`--include`).
    func curl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["--silent", "--show-error", "--max-time", "5", "--include"] + arguments
        let output = try CapturedOutput()
        process.standardOutput = output.handle
        try process.run()
        process.waitUntilExit()
        let data = output.data
        guard process.terminationStatus == 0 else { throw CurlFailed(status: process.terminationStatus) }
        return String(decoding: data, as: UTF8.self)
    }
}
