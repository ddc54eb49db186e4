import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Many CoAP CON requests from many source ports at once, for the load and
/// fault tests (one `coap-client` process per request would measure process
/// start-up, not the gateway). A small RFC 7252 client on plain UDP sockets:
/// CON POSTs with a window of outstanding requests per socket,
/// retransmission with back-off, piggybacked and separate responses (a
/// separate CON response is ACKed), one thread running a `poll()` loop.
final class CoAPLoad: Sendable {
    struct Request: Sendable {
        var path: [String]
        var payload: [UInt8]
        var contentFormat: Int? = nil
    }

    /// Final response code per request (`"2.04"`…), nil if none arrived.
    struct Outcome: Sendable {
        var codes: [String?]
        var accepted: [Int] { codes.indices.filter { codes[$0] == "2.04" } }
        var unanswered: Int { codes.filter { $0 == nil }.count }
        var histogram: [String: Int] {
            codes.reduce(into: [:]) { $0[$1 ?? "none", default: 0] += 1 }
        }
    }

    /// Responses received so far (any code), readable while it runs.
    let answered = Atomic<Int>(0)
    private let stopRequested = Atomic<Bool>(false)

    init() {}

    /// Makes `run` return at once, abandoning requests still outstanding.
    func stop() { stopRequested.store(true, ordering: .relaxed) }

    /// Sends `requests` to 127.0.0.1:port from `sockets` source ports, request
    /// i from socket i % sockets, at most `window` outstanding per socket.
    func run(
        port: UInt16,
        requests: [Request],
        sockets: Int,
        window: Int,
        timeout: Duration = .seconds(60)
    ) async throws -> Outcome {
        // Cancelled (a test failed and its `async let` is torn down): stop soon.
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let thread = Thread { [self] in
                    do {
                        let outcome = try self.loop(port: port, requests: requests, sockets: sockets, window: window, timeout: timeout)
                        continuation.resume(returning: outcome)
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.name = "coap-load"
                thread.start()
            }
        } onCancel: {
            self.stop()
        }
    }

    private struct Pending {
        var index: Int
        var datagram: [UInt8]
        var sentAt: ContinuousClock.Instant
        var retries: Int
        /// An empty ACK arrived: a separate response will follow; stop retransmitting.
        var acknowledged: Bool
    }

    private final class Endpoint {
        let fd: Int32
        var queue: [Int]
        var pending: [UInt32: Pending] = [:]  // by token
        var nextMessageID: UInt16

        init(fd: Int32, queue: [Int]) {
            self.fd = fd
            self.queue = queue
            nextMessageID = UInt16.random(in: 0...UInt16.max)
        }
    }

    private func loop(port: UInt16, requests: [Request], sockets: Int, window: Int, timeout: Duration) throws -> Outcome {
        var codes = [String?](repeating: nil, count: requests.count)
        var endpoints: [Endpoint] = []
        defer { for endpoint in endpoints { close(endpoint.fd) } }
        for socketIndex in 0..<sockets {
            let fd = socket(AF_INET, socketDatagram, 0)
            guard fd >= 0 else { throw HarnessError("socket(): \(String(cString: strerror(errno)))") }
            var address = LoopbackPorts.loopback(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(fd)
                throw HarnessError("connect(udp 127.0.0.1:\(port)): \(String(cString: strerror(errno)))")
            }
            let queue = Array(stride(from: socketIndex, to: requests.count, by: sockets))
            endpoints.append(Endpoint(fd: fd, queue: queue.reversed()))
        }

        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var nextToken = UInt32.random(in: 0...UInt32.max)
        var buffer = [UInt8](repeating: 0, count: 65_536)

        func send(_ datagram: [UInt8], on endpoint: Endpoint) {
            _ = datagram.withUnsafeBytes { Glibc.send(endpoint.fd, $0.baseAddress, $0.count, 0) }
        }

        while clock.now < deadline {
            let stopping = stopRequested.load(ordering: .relaxed)
            var busy = false
            for endpoint in endpoints {
                // Fill the window.
                while !stopping, endpoint.pending.count < window, let index = endpoint.queue.popLast() {
                    nextToken &+= 1
                    endpoint.nextMessageID &+= 1
                    let datagram = Self.encodePost(
                        messageID: endpoint.nextMessageID, token: nextToken, request: requests[index]
                    )
                    endpoint.pending[nextToken] = Pending(
                        index: index, datagram: datagram, sentAt: clock.now, retries: 0, acknowledged: false
                    )
                    send(datagram, on: endpoint)
                }
                // Retransmit (RFC 7252: ACK_TIMEOUT 2 s, doubling, MAX_RETRANSMIT 4).
                let now = clock.now
                for (token, var pending) in endpoint.pending where !pending.acknowledged {
                    let wait = Duration.seconds(2) * (1 << pending.retries)
                    guard now - pending.sentAt >= wait else { continue }
                    if pending.retries >= 4 {
                        endpoint.pending[token] = nil
                        continue
                    }
                    pending.retries += 1
                    pending.sentAt = now
                    endpoint.pending[token] = pending
                    send(pending.datagram, on: endpoint)
                }
                if !endpoint.pending.isEmpty || (!stopping && !endpoint.queue.isEmpty) { busy = true }
            }
            if !busy || stopping { break }

            var fds = endpoints.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), 50)
            if ready <= 0 { continue }
            for (slot, entry) in fds.enumerated() where entry.revents & Int16(POLLIN) != 0 {
                let endpoint = endpoints[slot]
                while true {
                    let received = buffer.withUnsafeMutableBytes { recv(endpoint.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if received < 0 { break }  // EAGAIN, or ECONNREFUSED when nobody listens
                    guard let response = Self.decode(Array(buffer[0..<received])) else { continue }
                    if response.type == 0 {
                        // A separate response (CON): acknowledge it.
                        send(Self.emptyAck(messageID: response.messageID), on: endpoint)
                    }
                    if response.code == 0 {
                        // Empty ACK (type 2) or RST (type 3) for one of ours.
                        if response.type == 3 {
                            if let token = endpoint.pending.first(where: { Self.messageID(of: $0.value.datagram) == response.messageID })?.key {
                                endpoint.pending[token] = nil
                            }
                        } else if let entry = endpoint.pending.first(where: { Self.messageID(of: $0.value.datagram) == response.messageID }) {
                            endpoint.pending[entry.key]?.acknowledged = true
                        }
                        continue
                    }
                    guard let token = response.token, let pending = endpoint.pending[token] else { continue }
                    endpoint.pending[token] = nil
                    codes[pending.index] = "\(response.code >> 5).\(String(format: "%02d", response.code & 0x1F))"
                    answered.add(1, ordering: .relaxed)
                }
            }
        }
        return Outcome(codes: codes)
    }

    // MARK: - Wire format

    static func encodePost(messageID: UInt16, token: UInt32, request: Request) -> [UInt8] {
        var bytes: [UInt8] = [0x44, 0x02, UInt8(messageID >> 8), UInt8(messageID & 0xFF)]  // v1 CON tkl4 POST
        bytes += [UInt8(token >> 24), UInt8((token >> 16) & 0xFF), UInt8((token >> 8) & 0xFF), UInt8(token & 0xFF)]
        var last = 0
        func option(_ number: Int, _ value: [UInt8]) {
            let delta = number - last
            last = number
            func nibble(_ n: Int) -> (UInt8, [UInt8]) {
                if n < 13 { return (UInt8(n), []) }
                if n < 269 { return (13, [UInt8(n - 13)]) }
                return (14, [UInt8((n - 269) >> 8), UInt8((n - 269) & 0xFF)])
            }
            let (d, dExt) = nibble(delta), (l, lExt) = nibble(value.count)
            bytes.append(d << 4 | l)
            bytes += dExt + lExt + value
        }
        for segment in request.path { option(11, Array(segment.utf8)) }
        if let format = request.contentFormat {
            option(12, format == 0 ? [] : format < 256 ? [UInt8(format)] : [UInt8(format >> 8), UInt8(format & 0xFF)])
        }
        if !request.payload.isEmpty { bytes += [0xFF] + request.payload }
        return bytes
    }

    static func emptyAck(messageID: UInt16) -> [UInt8] {
        [0x60, 0x00, UInt8(messageID >> 8), UInt8(messageID & 0xFF)]
    }

    static func messageID(of datagram: [UInt8]) -> UInt16 {
        UInt16(datagram[2]) << 8 | UInt16(datagram[3])
    }

    struct Decoded {
        var type: UInt8
        var code: UInt8
        var messageID: UInt16
        var token: UInt32?
    }

    static func decode(_ bytes: [UInt8]) -> Decoded? {
        guard bytes.count >= 4, bytes[0] >> 6 == 1 else { return nil }
        let tokenLength = Int(bytes[0] & 0x0F)
        guard bytes.count >= 4 + tokenLength else { return nil }
        var token: UInt32?
        if tokenLength == 4 {
            token = bytes[4..<8].reduce(0) { $0 << 8 | UInt32($1) }
        }
        return Decoded(type: (bytes[0] >> 4) & 0x03, code: bytes[1], messageID: messageID(of: bytes), token: token)
    }
}
