import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What held over plain CoAP and HTTP holds over DTLS and HTTPS (issue 9's
/// acceptance): nothing acknowledged is lost through kill -9, each topic
/// keeps its order, a full outbox is 5.03 / 503; and a hostile DTLS peer
/// cannot take the gateway away from the devices it already serves.
@Suite("DTLS and HTTPS under faults")
struct SecureTransportTests {
    @Test("garbage datagrams and 3,000 ClientHellos from as many source ports: an established DTLS session keeps getting 2.04, memory stays bounded")
    func hostileDTLS() async throws {
        let pki = try await DevicePKI.shared()
        try await EndToEnd.run("dtls-flood", settings: SecureSetup.settings(pki)) { env in
            let gateway = env.gateway
            let port = gateway.dtlsPort
            let pid = try #require(gateway.pid)
            let hello = try await DTLSFlood.captureClientHello()
            #expect(hello.count > 13 && hello[0] == 22 && hello[13] == 1, "not a DTLS ClientHello: \(hello.prefix(16))")

            // kitchen-1 holds one session and posts once a second over it.
            let requests = 20
            let arguments = [
                "-a", "127.0.0.1", "-p", String(try LoopbackPorts.udp()), "-m", "post", "-v", "6", "-B", "90", "-G", String(requests),
                "-u", "kitchen-1", "-k", SecureSetup.kitchen.psk!, "-e", "held",
                "coaps://127.0.0.1:\(port)/sensors/kitchen-1/temperature",
            ]
            let session = Task { try await ProcessRunner.run(Tools.coapClientDTLS, arguments, timeout: .seconds(120)) }
            try await Task.sleep(for: .seconds(3))
            let before = BacklogStartupTests.residentMegabytes(pid)

            let sent = try await onOwnThread("dtls-flood") { () -> Int in
                var count = DTLSFlood.garbage(to: port, count: 2000)
                count += DTLSFlood.send(hello, to: port, fromFreshSockets: 3000)
                return count
            }
            let during = BacklogStartupTests.residentMegabytes(pid)
            let held = try await session.value
            let after = BacklogStartupTests.residentMegabytes(pid)
            let codes = CoAP.finalCodes(held)
            print("DTLS flood: \(sent) datagrams; gateway VmRSS \(before) MiB before, \(during) MiB right after, \(after) MiB at the end; held session codes \(codes)")

            #expect(gateway.isRunning, "the gateway died under the flood")
            #expect(codes.count == requests && codes.allSatisfy { $0 == "2.04" }, "the established session was not served throughout: \(codes)\n\(held.summary)")
            // 64 handshake placeholders at most (coap.dtls.max_handshakes): a few MiB, never the flood's size.
            #expect(during - before < 32, "VmRSS grew from \(before) to \(during) MiB under the flood")
            _ = try await env.subscriber.waitFor(count: requests)
        }
    }

    @Test("QoS 1 over DTLS and HTTPS while the gateway is SIGKILLed 3 times: every 2.04/202 delivered, each topic in order")
    func killNineOverSecureTransports() async throws {
        let pki = try await DevicePKI.shared()
        try await EndToEnd.run("secure-kill9", settings: SecureSetup.settings(pki)) { env in
            let gateway = env.gateway
            let dtlsPort = gateway.dtlsPort, httpsPort = gateway.httpsPort
            let tls = HTTPTLS(trust: pki.serverCA)
            let dtlsA = DTLSStream(), dtlsB = DTLSStream(), httpsA = HTTPStream(), httpsB = HTTPStream()
            async let kitchen = dtlsA.run(port: dtlsPort, path: "/sensors/kitchen-1/temperature", security: SecureSetup.psk(SecureSetup.kitchen)) { "dtls-kitchen-\($0)" }
            async let hall = dtlsB.run(port: dtlsPort, path: "/sensors/hall-2/temperature", security: SecureSetup.psk(SecureSetup.hall)) { "dtls-hall-\($0)" }
            async let kitchenHTTPS = httpsA.run(
                url: { _ in "https://127.0.0.1:\(httpsPort)/open/https-bearer" }, payload: { "https-bearer-\($0)" },
                headers: SecureSetup.bearer("tok-kitchen-1"), tls: tls
            )
            async let hallHTTPS = httpsB.run(
                url: { _ in "https://127.0.0.1:\(httpsPort)/open/https-basic" }, payload: { "https-basic-\($0)" },
                headers: SecureSetup.basic("kitchen-1", "tok-kitchen-1"), tls: tls
            )

            var kills = 0
            while kills < 3 {
                let target = dtlsA.answered.load(ordering: .relaxed) + 10
                try await eventually(timeout: .seconds(60), "DTLS answers before kill \(kills + 1)") {
                    dtlsA.answered.load(ordering: .relaxed) >= target ? true : nil
                }
                try await Task.sleep(for: .seconds(Double.random(in: 0.2...1.2)))
                await gateway.kill()
                kills += 1
                try await Task.sleep(for: .milliseconds(300))
                try await gateway.start()
            }
            let settled = dtlsA.answered.load(ordering: .relaxed) + 10
            try await eventually(timeout: .seconds(60), "DTLS answers after the last restart") {
                dtlsA.answered.load(ordering: .relaxed) >= settled ? true : nil
            }
            for stream in [dtlsA, dtlsB] { stream.stop() }
            for stream in [httpsA, httpsB] { stream.stop() }
            let dtls = await kitchen + hall
            let https = await kitchenHTTPS + hallHTTPS

            let dtlsCodes = dtls.reduce(into: [String: Int]()) { $0[$1.code ?? "none", default: 0] += 1 }
            let httpsCodes = https.reduce(into: [String: Int]()) { $0[$1.status.map(String.init) ?? "none", default: 0] += 1 }
            #expect(Set(dtlsCodes.keys).isSubset(of: ["2.04", "none"]), "DTLS answers: \(dtlsCodes)")
            #expect(Set(httpsCodes.keys).isSubset(of: ["202", "none"]), "HTTPS answers: \(httpsCodes)")
            let acknowledged = Set(dtls.filter { $0.code == "2.04" }.map(\.payload) + https.filter { $0.status == 202 }.map(\.payload))
            #expect(https.filter { $0.status == 202 }.count >= 10, "HTTPS load too light to prove anything: \(httpsCodes)")

            try await env.subscriber.waitForAll(acknowledged, timeout: .seconds(120))
            let received = try await env.subscriber.settle(for: .seconds(1))
            let accounting = Accounting(acknowledged: acknowledged, received: received)
            let order = LongOutageTests.orderViolations(received)
            print("kill -9 x\(kills) over DTLS and HTTPS: \(accounting); DTLS \(dtlsCodes), HTTPS \(httpsCodes)")
            #expect(accounting.lost.isEmpty, "\(accounting)")
            #expect(order.isEmpty, "per-topic order broken:\n\(order.prefix(20).joined(separator: "\n"))")
        }
    }

    @Test("outbox full over DTLS and HTTPS: 5.03 with Max-Age / 503 with Retry-After; what was accepted is delivered later")
    func fullOutbox() async throws {
        let pki = try await DevicePKI.shared()
        let settings = SecureSetup.settings(pki, outboxMaxMessages: 2)
        try await EndToEnd.run("secure-full", settings: settings, brokerDownAtStart: true) { env in
            let gateway = env.gateway
            let tls = HTTPTLS(trust: pki.serverCA)
            let first = try await CoAP.request("post", port: gateway.dtlsPort, path: "/sensors/kitchen-1/temperature", payload: Array("full-1".utf8), security: SecureSetup.psk(SecureSetup.kitchen))
            let second = try await HTTP.request("POST", gateway.httpsURL("/sensors/kitchen-1/temperature"), body: Array("full-2".utf8), headers: SecureSetup.bearer("tok-kitchen-1"), tls: tls)
            #expect(first.code == "2.04", "\(first)")
            #expect(second.status == 202, "\(second)")

            let coap = try await CoAP.request("post", port: gateway.dtlsPort, path: "/sensors/kitchen-1/temperature", payload: Array("full-3".utf8), security: SecureSetup.psk(SecureSetup.kitchen))
            #expect(coap.code == "5.03" && (coap.maxAge ?? 0) > 0, "DTLS with a full outbox: \(coap)")
            let http = try await HTTP.request("POST", gateway.httpsURL("/sensors/kitchen-1/temperature"), body: Array("full-4".utf8), headers: SecureSetup.bearer("tok-kitchen-1"), tls: tls)
            #expect(http.status == 503 && (Int(http.header("Retry-After") ?? "") ?? 0) > 0, "HTTPS with a full outbox: \(http)")

            try await env.broker.start()
            let received = try await env.subscriber.waitFor(count: 2, timeout: MosquittoBroker.afterOutage)
            let settled = try await env.subscriber.settle(for: .milliseconds(500))
            #expect(Set(settled.map(\.text)) == ["full-1", "full-2"], "\(received)")
        }
    }
}

/// Datagrams a hostile peer sends to a DTLS port.
enum DTLSFlood {
    /// The first datagram `coap-client-openssl` sends to a DTLS server: a
    /// ClientHello without a cookie, caught on a socket of our own.
    static func captureClientHello() async throws -> [UInt8] {
        let fd = socket(AF_INET, socketDatagram, 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try LoopbackPorts.bindClientUDP(fd)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let client = Task {
            try? await ProcessRunner.run(Tools.coapClientDTLS, [
                "-B", "3", "-u", "probe", "-k", "probe-key", "coaps://127.0.0.1:\(port)/",
            ], timeout: .seconds(15))
        }
        defer { client.cancel() }
        let socketFD = fd
        let datagram = try await onOwnThread("capture-hello") { () -> [UInt8] in
            var buffer = [UInt8](repeating: 0, count: 2048)
            let count = recv(socketFD, &buffer, buffer.count, 0)
            guard count > 0 else { throw HarnessError("no ClientHello from coap-client-openssl") }
            return Array(buffer.prefix(count))
        }
        return datagram
    }

    /// Sends `datagram` once from each of `count` new sockets (new source
    /// ports). Returns how many were sent.
    static func send(_ datagram: [UInt8], to port: UInt16, fromFreshSockets count: Int) -> Int {
        var sent = 0
        var target = LoopbackPorts.loopback(port: port)
        for _ in 0..<count {
            let fd = socket(AF_INET, socketDatagram, 0)
            guard fd >= 0 else { continue }
            let result = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, datagram, datagram.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if result == datagram.count { sent += 1 }
            close(fd)
        }
        return sent
    }

    /// Random bytes of random sizes from a few sockets, some of them looking
    /// like DTLS records.
    static func garbage(to port: UInt16, count: Int) -> Int {
        var sent = 0
        var target = LoopbackPorts.loopback(port: port)
        let sockets = (0..<8).map { _ in socket(AF_INET, socketDatagram, 0) }.filter { $0 >= 0 }
        defer { sockets.forEach { close($0) } }
        var generator = SystemRandomNumberGenerator()
        for index in 0..<count {
            var bytes = (0..<Int.random(in: 1...1400, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if index % 3 == 0, bytes.count > 13 { bytes[0] = 22; bytes[1] = 0xfe; bytes[2] = 0xfd }
            let fd = sockets[index % sockets.count]
            let result = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if result > 0 { sent += 1 }
        }
        return sent
    }
}
