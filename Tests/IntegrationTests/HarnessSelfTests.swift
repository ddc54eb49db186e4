import Foundation
import Testing

/// The harness on its own, without the gateway: the broker really requires
/// client certificates, the subscriber sees exact payloads, and its
/// persistent session survives a broker restart.
@Suite("Harness self-test")
struct HarnessSelfTests {
    @Test("mosquitto with mutual TLS: a certified client round-trips exact bytes, a client without a certificate is refused")
    func brokerRoundTrip() async throws {
        try await Self.withBroker("self-roundtrip") { broker, subscriber in
            let certificates = broker.certificates
            let binary: [UInt8] = [0x00, 0xFF, 0x0A, 0x20, 0x0D, 0x7F] + Array("tail with spaces".utf8)
            try await broker.publish(topic: "self/binary", payload: binary, qos: 1)
            try await broker.publish(topic: "self/with space", payload: [], qos: 0)
            let received = try await subscriber.waitFor(count: 2, timeout: .seconds(15))
            #expect(received[0] == ReceivedMessage(topic: "self/binary", payload: binary, qos: 1, retained: false))
            #expect(received[1] == ReceivedMessage(topic: "self/with space", payload: [], qos: 0, retained: false))

            // No client certificate: the TLS handshake must fail.
            let anonymous = try await ProcessRunner.run(
                Tools.mosquittoPub,
                ["-h", "localhost", "-p", String(broker.port), "--cafile", certificates.caFile, "-t", "self/anon", "-m", "x"],
                timeout: .seconds(15)
            )
            #expect(!anonymous.succeeded, "a client without a certificate was accepted:\n\(anonymous.summary)")
            // A certificate from another CA is refused too.
            let strangerDirectory = try TemporaryDirectory("self-stranger-pki")
            defer { strangerDirectory.remove() }
            let strangers = try await TestCertificates.make(in: strangerDirectory)
            let stranger = try await ProcessRunner.run(
                Tools.mosquittoPub,
                [
                    "-h", "localhost", "-p", String(broker.port), "--cafile", certificates.caFile,
                    "--cert", strangers.subscriber.certificate, "--key", strangers.subscriber.key,
                    "-t", "self/stranger", "-m", "x",
                ],
                timeout: .seconds(15)
            )
            #expect(!stranger.succeeded, "a client certificate from another CA was accepted:\n\(stranger.summary)")
            let after = try await subscriber.settle(for: .milliseconds(500))
            #expect(after.count == 2, "unexpected messages: \(after)")
        }
    }

    @Test("the subscriber's persistent session keeps QoS 1 messages across broker restarts")
    func persistentSessionAcrossRestart() async throws {
        try await Self.withBroker("self-restart") { broker, subscriber in
            try await broker.publish(topic: "self/before", payload: Array("1".utf8))
            try await subscriber.waitFor(count: 1, timeout: .seconds(10))

            // The broker restarts under a running subscriber (which may or may
            // not reconnect by itself: the harness relaunches it if it exits).
            try await broker.stop()
            try await broker.start()
            try await broker.publish(topic: "self/after-restart", payload: Array("2".utf8), qos: 1, clientID: "self-publisher")
            try await subscriber.waitFor(count: 2, timeout: .seconds(20))

            // The subscriber is away while the broker restarts and a message is
            // published: the session restored from disk must have queued it.
            await subscriber.stop()
            try await broker.stop()
            try await broker.start()
            try await broker.publish(topic: "self/while-away", payload: Array("3".utf8), qos: 1, clientID: "self-publisher")
            try await subscriber.start()
            let received = try await subscriber.waitFor(count: 3, timeout: .seconds(15))
            #expect(received.map(\.topic) == ["self/before", "self/after-restart", "self/while-away"])
        }
    }

    /// A running broker and a subscriber on it, both stopped and the
    /// directory removed whatever `body` does.
    static func withBroker(_ label: String, _ body: (MosquittoBroker, Subscriber) async throws -> Void) async throws {
        let directory = try TemporaryDirectory(label)
        defer { directory.remove() }
        let broker = try MosquittoBroker(certificates: try await TestCertificates.shared(), directory: directory)
        let subscriber = Subscriber(broker: broker)
        do {
            try await broker.start()
            try await subscriber.start()
            try await body(broker, subscriber)
        } catch {
            await subscriber.stop()
            await broker.shutdown()
            throw HarnessError("\(error)\n===== broker log =====\n\(tail(broker.log, lines: 30))")
        }
        await subscriber.stop()
        await broker.shutdown()
    }

    @Test("free loopback ports are distinct and the gateway binary is found")
    func portsAndBinary() throws {
        var seen = Set<UInt16>()
        for _ in 0..<20 {
            #expect(seen.insert(try LoopbackPorts.tcp()).inserted)
        }
        let binary = try GatewayBinary.path()
        #expect(FileManager.default.isExecutableFile(atPath: binary))
    }
}
