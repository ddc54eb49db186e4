import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A broker (or a middlebox in front of it) that accepts TCP and never
/// answers is detected within the connect timeout, logged with what
/// stalled, and the attempt is given up for a new one.
@Suite("A stalled upstream")
struct StalledUpstreamTests {
    /// A listening socket that never accepts: the kernel completes the TCP
    /// handshake for its backlog, and nothing ever answers the TLS ClientHello.
    final class SilentListener {
        let fd: Int32
        let port: UInt16

        init() throws {
            fd = socket(AF_INET, socketStream, 0)
            port = try LoopbackPorts.tcp()
            var address = LoopbackPorts.loopback(port: port)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard fd >= 0, bound == 0, listen(fd, 16) == 0 else { throw HarnessError("cannot listen on 127.0.0.1:\(port)") }
        }

        deinit { close(fd) }
    }

    @Test("TCP accepted, TLS never answered: 'no TLS handshake from the broker in 30 s', then another attempt")
    func tlsNeverAnswered() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try TemporaryDirectory("stalled-tls")
        defer { directory.remove() }
        let silent = try SilentListener()
        let gateway = try GatewayProcess(brokerPort: silent.port, certificates: certificates, directory: directory)
        try await gateway.start()
        let found = try? await eventually(timeout: .seconds(90), interval: .milliseconds(250), "the stalled attempt logged") {
            gateway.currentLog.split(separator: "\n").first { $0.contains("upstream connect attempt") && $0.contains("no TLS handshake") || $0.contains("Unknown error") }
        }
        let running = gateway.isRunning
        let log = gateway.currentLog
        await gateway.kill()
        let line = try #require(found, "no timed-out attempt in the log:\n\(tail(log, lines: 20))")
        // 30 s: the harness's keep_alive, after which libmosquitto gives up
        // on a CONNACK (as does the gateway's own 30 s connect timeout).
        #expect(line.contains("TCP connected, but no TLS handshake from the broker in 30 s"), "\(line)")
        #expect(!log.contains("Unknown error"))
        // The stalled attempt was given up and the gateway goes on trying.
        #expect(running)
    }

    @Test("TLS completes, CONNACK never comes: 'TLS up, but no CONNACK from the broker in 30 s'")
    func connackNeverComes() async throws {
        // openssl s_server finishes the mutual-TLS handshake and then only
        // prints what it receives: the CONNECT is never answered.
        let line = try await TLSHandshakeTests.withHandshake("stalled-connack", serverArguments: [], profile: "generic") { _, gateway in
            try await eventually(timeout: .seconds(90), interval: .milliseconds(250), "the stalled attempt logged") {
                gateway.currentLog.split(separator: "\n").first { $0.contains("upstream connect attempt") && $0.contains("CONNACK") }
            }
        }
        #expect(line.contains("TLS up, but no CONNACK from the broker in 30 s"), "\(line)")
    }

    @Test("a frozen broker (SIGSTOP) on a live connection: dropped within 2 x keep_alive with the reason logged; after it thaws, what was in flight is delivered")
    func frozenBroker() async throws {
        var settings = GatewaySettings()
        settings.keepAlive = 5
        try await EndToEnd.run("stalled-frozen", settings: settings) { env in
            let gateway = env.gateway
            let before = try await FullDiskTests.post(gateway, devices: (0..<5).map { "fz-a\($0)" })
            #expect(before.others.isEmpty)
            try await env.subscriber.waitFor(count: 5)
            env.broker.freeze()
            let during = try await FullDiskTests.post(gateway, devices: (0..<5).map { "fz-b\($0)" })
            #expect(during.others.isEmpty, "stored while the broker is frozen: \(during.others)")
            let line = try await eventually(timeout: .seconds(40), interval: .milliseconds(250), "the stall logged") {
                gateway.currentLog.split(separator: "\n").first {
                    $0.contains("not even to PINGREQ") || $0.contains("upstream stalled; reconnecting")
                }
            }
            env.broker.thaw()
            #expect(line.contains("warning"), "\(line)")
            let expected = FullDiskTests.topics(before.accepted + during.accepted)
            try await env.subscriber.waitUntil(timeout: .seconds(120), "all 10 readings") {
                expected.isSubset(of: Set($0.map(\.topic)))
            }
        }
    }
}
