import Foundation
import TestSupport
import GatewayCore
import Synchronization
@testable import CoAPIngress
import Logging

/// A pipeline double: answers as told and records what it saw.
final class FakePipeline: IngressPipeline {
    enum Behaviour: Sendable {
        case reject(IngressRejection)
        case complete(after: Double, Result<Acceptance, IngressRejection>)
        /// Answers at once without a completion, as a QoS 0 message does.
        case answerAtOnce
    }

    let behaviour: Behaviour
    let seen = Mutex<[IngressRequest]>([])

    init(_ behaviour: Behaviour) {
        self.behaviour = behaviour
    }

    var requests: [IngressRequest] { seen.withLock { $0 } }

    func accept(_ request: IngressRequest, completion: @escaping @Sendable (Result<Acceptance, IngressRejection>) -> Void) throws(IngressRejection) -> IngressAdmission {
        seen.withLock { $0.append(request) }
        switch behaviour {
        case .reject(let rejection):
            throw rejection
        case .complete(let delay, let result):
            if delay == 0 {
                completion(result)
            } else {
                DispatchQueue.global().asyncAfter(deadline: .now() + delay) { completion(result) }
            }
        case .answerAtOnce:
            return .answered(.stored)
        }
        return .pending
    }
}

/// A free UDP port on loopback: bind port 0, read it back, release it.
func freeUDPPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin_port)
}

/// A running CoAP server on a free loopback port, stopped by `stop()`.
struct TestServer {
    let server: CoAPServer
    let port: UInt16

    static func start(_ pipeline: FakePipeline, maxBody: Int = 1024, emptyAckDelay: Double = 0.5) throws -> TestServer {
        let port = freeUDPPort()
        var logger = Logger(label: "coap-test")
        logger.logLevel = .warning
        let server = CoAPServer(
            settings: CoAPSettings(listen: [ListenAddress(host: "127.0.0.1", port: port)], maxBody: maxBody),
            pipeline: pipeline, logger: logger, emptyAckDelay: emptyAckDelay
        )
        try server.start()
        return TestServer(server: server, port: port)
    }

    func stop() { server.stop(timeout: 2) }
}

/// What coap-client printed for one request. Run with `-v 6`, it logs every
/// PDU as `v:1 t:TYPE c:CODE i:MID {token} [ options ] :: 'payload'`.
struct CoAPResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var elapsed: Double

    /// Logged PDUs that are responses (code `N.NN`), in order.
    var responses: [String] {
        (stdout + "\n" + stderr).split(separator: "\n").map(String.init).filter {
            $0.range(of: #"c:\d\.\d\d"#, options: .regularExpression) != nil
        }
    }

    /// The final response's code, e.g. "2.04".
    var code: String? {
        guard let last = responses.last, let range = last.range(of: #"c:\d\.\d\d"#, options: .regularExpression) else { return nil }
        return String(last[range].dropFirst(2))
    }

    /// The final response's message type: CON, NON or ACK.
    var type: String? {
        guard let last = responses.last, let range = last.range(of: #"t:[A-Z]+"#, options: .regularExpression) else { return nil }
        return String(last[range].dropFirst(2))
    }

    var last: String { responses.last ?? "" }
}

/// Runs Debian's `coap-client-notls` (libcoap3-bin; `coap-client-openssl`
/// for DTLS) with a time limit.
func coapClient(_ arguments: [String], timeout: Double = 10, client: String = "coap-client-notls") throws -> CoAPResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/" + client)
    process.arguments = ["-B", "5", "-v", "6"] + arguments
    let out = try CapturedOutput(), err = try CapturedOutput()
    process.standardOutput = out.handle
    process.standardError = err.handle
    let started = Date()
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    let stdout = String(decoding: out.data, as: UTF8.self)
    let stderr = String(decoding: err.data, as: UTF8.self)
    return CoAPResult(status: process.terminationStatus, stdout: stdout, stderr: stderr, elapsed: Date().timeIntervalSince(started))
}

/// A bare UDP socket on loopback, for datagrams coap-client cannot make
/// (the same CON twice, as a retransmission).
struct RawCoAPSocket {
    let descriptor: Int32
    var server: sockaddr_in

    struct Failure: Error {}

    init(port: UInt16) throws {
        descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure() }
        server = sockaddr_in()
        server.sin_family = sa_family_t(AF_INET)
        server.sin_addr.s_addr = inet_addr("127.0.0.1")
        server.sin_port = port.bigEndian
    }

    /// A CON POST to Uri-Path "a" with payload "x".
    static func post(messageID: UInt16, token: [UInt8]) -> [UInt8] {
        [0x40 | UInt8(token.count), 0x02, UInt8(messageID >> 8), UInt8(messageID & 0xFF)] + token + [0xB1, 0x61, 0xFF, 0x78]
    }

    func send(_ datagram: [UInt8]) {
        var address = server
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(descriptor, datagram, datagram.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    /// Datagrams until `count` arrived (or `within` seconds passed), and any
    /// more that follow within `settle` seconds: a busy test machine may be
    /// slow to answer, but extra answers must still be seen.
    func receive(_ count: Int, within: Double = 5, settle: Double = 0.3) -> [[UInt8]] {
        var received = receiveAll(for: within, stopAt: count)
        if received.count >= count { received += receiveAll(for: settle) }
        return received
    }

    /// Every datagram that arrives within `seconds` (up to `stopAt`).
    func receiveAll(for seconds: Double, stopAt: Int = .max) -> [[UInt8]] {
        var received: [[UInt8]] = []
        let deadline = Date().addingTimeInterval(seconds)
        while received.count < stopAt, case let left = deadline.timeIntervalSinceNow, left > 0 {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 1500)
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count > 0 { received.append(Array(buffer.prefix(count))) }
        }
        return received
    }

    func close() { _ = Glibc.close(descriptor) }
}
