import Foundation
import GatewayCore
import Glibc
import Testing
@testable import CoAPIngress

/// Not a regular test: a measurement, run by hand with
/// `IOTGW_DTLS_FLOOD=1 swift test --skip-build --filter DTLSFloodMeasurement`.
/// Floods the DTLS port with ClientHellos from many source ports while one
/// PSK device keeps sending over its established session, and prints this
/// process's VmRSS before, during and after. Two floods: the captured first
/// ClientHello replayed (the server answers HelloVerifyRequest and keeps
/// only a bare "hello" session), then ClientHellos that return the cookie
/// (each gets an OpenSSL handshake, the expensive kind).
@Suite("DTLS handshake flood (measurement)", .serialized)
struct DTLSFloodMeasurement {
    static let enabled = ProcessInfo.processInfo.environment["IOTGW_DTLS_FLOOD"] == "1"

    @Test(.enabled(if: DTLSFloodMeasurement.enabled))
    func flood() throws {
        let floodSize = Int(ProcessInfo.processInfo.environment["IOTGW_DTLS_FLOOD_COUNT"] ?? "") ?? 2000
        let pipeline = FakePipeline(.complete(after: 0, .success(.stored)))
        let authority = FakeAuthority(keys: ["dev-1": Array("s3cret-key".utf8)])
        let server = try DTLSTestServer.start(pipeline, authority: authority, pki: nil, maxHandshakes: 64)
        defer { server.stop() }

        let hello = try captureClientHello()
        print("flood: captured ClientHello of \(hello.count) bytes")
        print("flood: VmRSS at start \(vmRSS()) kB")

        // One device with an established session, sending once a second.
        let requests = 150
        let box = ResultBox<CoAPResult>()
        let clientDone = DispatchSemaphore(value: 0)
        let uri = "\(server.secureURI)/a"
        Thread {
            box.set(Result {
                try coapClient(
                    ["-B", "200", "-G", "\(requests)", "-m", "post", "-u", "dev-1", "-k", "s3cret-key", "-e", "1", uri],
                    timeout: 240, client: "coap-client-openssl"
                )
            })
            clientDone.signal()
        }.start()
        let deadline = Date().addingTimeInterval(10)
        while pipeline.requests.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(pipeline.requests.count >= 1, "the PSK device did not get through")
        print("flood: VmRSS with the device's session \(vmRSS()) kB")

        let started = Date()
        var answered = 0
        for round in 0..<(floodSize / 200) {
            answered += replay(hello, port: server.securePort, sockets: 200, returnCookie: false)
            if round % 5 == 4 { print("flood: replayed \((round + 1) * 200), VmRSS \(vmRSS()) kB, requests seen \(pipeline.requests.count)") }
        }
        print("flood: \(floodSize) replayed ClientHellos in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, \(answered) HelloVerifyRequests back; VmRSS \(vmRSS()) kB")

        // Twice: the second pass finds the first one's handshakes over 30 s
        // old and pushes them out, so sessions churn.
        for pass in 1...2 {
            var handshakes = 0
            let started = Date()
            for round in 0..<(floodSize / 200) {
                handshakes += replay(hello, port: server.securePort, sockets: 200, returnCookie: true)
                if round % 5 == 4 { print("flood: cookie-returning pass \(pass): \((round + 1) * 200), VmRSS \(vmRSS()) kB, requests seen \(pipeline.requests.count)") }
            }
            print("flood: pass \(pass): \(floodSize) cookie-returning ClientHellos in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, \(handshakes) got a server flight; VmRSS \(vmRSS()) kB")
        }

        clientDone.wait()
        let result = try box.get()
        print("flood: device got \(result.responses.filter { $0.contains("c:2.04") }.count) answers 2.04 of \(requests); pipeline saw \(pipeline.requests.count); VmRSS \(vmRSS()) kB")
        #expect(pipeline.requests.count == requests)
        Thread.sleep(forTimeInterval: 35)
        print("flood: 35 s later VmRSS \(vmRSS()) kB")
    }

    /// VmRSS of this process, in kB.
    func vmRSS() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return -1 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    /// The first datagram `coap-client-openssl` sends to a DTLS server: its ClientHello (no cookie yet).
    func captureClientHello() throws -> [UInt8] {
        let socket = try RawCoAPSocket(port: 0)
        defer { socket.close() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket.descriptor, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket.descriptor, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/coap-client-openssl")
        process.arguments = ["-B", "3", "-u", "dev-1", "-k", "s3cret-key", "coaps://127.0.0.1:\(port)/a"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { process.terminate(); process.waitUntilExit() }
        guard let hello = socket.receiveAll(for: 5, stopAt: 1).first, hello.count > 25, hello[0] == 22, hello[13] == 1 else {
            throw DTLSTestPKI.Failure(description: "no ClientHello captured")
        }
        return hello
    }

    /// Sends `hello` from `sockets` fresh source ports; with `returnCookie`
    /// each port answers its HelloVerifyRequest with the ClientHello plus
    /// the cookie, as a real client does. Returns how many ports got an
    /// answer (a HelloVerifyRequest, or the server's flight).
    func replay(_ hello: [UInt8], port: UInt16, sockets count: Int, returnCookie: Bool) -> Int {
        let sockets = (0..<count).compactMap { _ in try? RawCoAPSocket(port: port) }
        defer { for socket in sockets { socket.close() } }
        for socket in sockets { socket.send(hello) }
        var answered = 0
        for socket in sockets {
            guard let verify = socket.receiveAll(for: 0.02, stopAt: 1).first else { continue }
            guard returnCookie else {
                answered += 1
                continue
            }
            guard let second = Self.withCookie(hello, from: verify) else { continue }
            socket.send(second)
            if !socket.receiveAll(for: 0.05, stopAt: 1).isEmpty { answered += 1 }
        }
        return answered
    }

    /// The ClientHello again, with the cookie of a HelloVerifyRequest
    /// (RFC 6347 4.2.1): message_seq 1, record sequence 1, lengths grown.
    static func withCookie(_ hello: [UInt8], from verify: [UInt8]) -> [UInt8]? {
        // Record header 13 bytes, handshake header 12; HelloVerifyRequest
        // body: server_version (2), cookie length (1), cookie.
        guard verify.count > 28, verify[0] == 22, verify[13] == 3 else { return nil }
        let cookieLength = Int(verify[27])
        guard verify.count >= 28 + cookieLength else { return nil }
        let cookie = Array(verify[28..<(28 + cookieLength)])
        // ClientHello body: client_version (2), random (32), session_id.
        let sessionIDAt = 13 + 12 + 2 + 32
        guard hello.count > sessionIDAt + 1 else { return nil }
        let cookieAt = sessionIDAt + 1 + Int(hello[sessionIDAt])
        guard hello.count > cookieAt, hello[cookieAt] == 0 else { return nil }
        var second = Array(hello[..<cookieAt]) + [UInt8(cookieLength)] + cookie + Array(hello[(cookieAt + 1)...])
        func put24(_ value: Int, at index: Int) {
            second[index] = UInt8((value >> 16) & 0xFF)
            second[index + 1] = UInt8((value >> 8) & 0xFF)
            second[index + 2] = UInt8(value & 0xFF)
        }
        let body = second.count - 25
        second[11] = UInt8((second.count - 13) >> 8)
        second[12] = UInt8((second.count - 13) & 0xFF)
        second[10] = 1  // record sequence number (low byte)
        put24(body, at: 14)  // handshake length
        second[17] = 0
        second[18] = 1  // message_seq
        put24(0, at: 19)  // fragment offset
        put24(body, at: 22)  // fragment length
        return second
    }
}
