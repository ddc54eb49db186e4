import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A continuous stream of CoAP CON POSTs for the fault tests, running until
/// `stop` rather than over a fixed list (`CoAPLoad`), and giving up on a
/// request instead of waiting forever: a gateway killed after its empty ACK
/// never sends the separate response, and a fixed window of such requests
/// would stall every socket for the rest of the test.
///
/// Each socket (source port) keeps at most `window` requests outstanding;
/// request `n` of socket `s` is `make(s, n)`, so a test that wants per-topic
/// order gives each socket its own topic and a window of 1 (the next request
/// is only sent once the previous one has its final answer, so acceptance
/// order is send order). An optional rate limit spreads the load evenly.
///
/// Retransmission as RFC 7252 (ACK timeout doubling, `maxRetransmit`), a
/// separate CON response is ACKed, an RST ends the request. A request whose
/// separate response does not come within `separateResponseTimeout` of its
/// empty ACK, or which is not acknowledged at all after the last
/// retransmission, ends without a code. Only a final 2.04 counts as
/// acknowledged by the gateway.
final class CoAPStream: Sendable {
    struct Record: Sendable {
        var socket: Int
        var sequence: Int
        var payload: [UInt8]
        var code: String?
        var text: String { String(decoding: payload, as: UTF8.self) }
    }

    struct Outcome: Sendable {
        var records: [Record]
        /// Payload texts of the requests answered 2.04.
        var acknowledged: Set<String> { Set(records.filter { $0.code == "2.04" }.map(\.text)) }
        var histogram: [String: Int] {
            records.reduce(into: [:]) { $0[$1.code ?? "none", default: 0] += 1 }
        }
    }

    struct Settings: Sendable {
        var sockets = 8
        var window = 4
        /// Requests per second over all sockets; nil: as fast as answers come.
        var ratePerSecond: Double? = nil
        var retransmitAfter: Duration = .seconds(1)
        var maxRetransmit = 4
        var separateResponseTimeout: Duration = .seconds(5)
        /// Hard bound on `run`, whatever happens.
        var timeout: Duration = .seconds(120)
    }

    /// Requests sent (first transmissions) and final answers received so far.
    let sent = Atomic<Int>(0)
    let answered = Atomic<Int>(0)
    /// 2.04 answers so far.
    let acknowledgedCount = Atomic<Int>(0)
    /// Whether `stop` was called, and until when outstanding requests may finish.
    private let stopState = Mutex<(requested: Bool, drainUntil: ContinuousClock.Instant?)>((false, nil))

    init() {}

    /// Sends no new request from now on; outstanding ones may still finish
    /// for `drain`, after which `run` returns.
    func stop(drain: Duration = .zero) {
        stopState.withLock { $0 = (true, ContinuousClock.now.advanced(by: drain)) }
    }

    func run(
        port: UInt16,
        settings: Settings = Settings(),
        make: @escaping @Sendable (_ socket: Int, _ sequence: Int) -> CoAPLoad.Request
    ) async throws -> Outcome {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let thread = Thread { [self] in
                    do {
                        continuation.resume(returning: try self.loop(port: port, settings: settings, make: make))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.name = "coap-stream"
                thread.start()
            }
        } onCancel: {
            self.stop()
        }
    }

    private struct Pending {
        var record: Int
        var datagram: [UInt8]
        var sentAt: ContinuousClock.Instant
        var retries: Int
        var emptyAckAt: ContinuousClock.Instant?
    }

    private final class Endpoint {
        let fd: Int32
        var pending: [UInt32: Pending] = [:]  // by token
        var nextSequence = 0
        var nextMessageID = UInt16.random(in: 0...UInt16.max)
        init(fd: Int32) { self.fd = fd }
    }

    private func loop(
        port: UInt16, settings: Settings, make: (_ socket: Int, _ sequence: Int) -> CoAPLoad.Request
    ) throws -> Outcome {
        var records: [Record] = []
        var endpoints: [Endpoint] = []
        defer { for endpoint in endpoints { close(endpoint.fd) } }
        for _ in 0..<settings.sockets {
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
            endpoints.append(Endpoint(fd: fd))
        }

        let clock = ContinuousClock()
        let started = clock.now
        let deadline = started.advanced(by: settings.timeout)
        var nextToken = UInt32.random(in: 0...UInt32.max)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var created = 0
        var rotor = 0

        func send(_ datagram: [UInt8], on endpoint: Endpoint) {
            // ECONNREFUSED while the gateway is down: the retransmission covers it.
            _ = datagram.withUnsafeBytes { Glibc.send(endpoint.fd, $0.baseAddress, $0.count, 0) }
        }

        while clock.now < deadline {
            let (stopping, drainUntil) = stopState.withLock { ($0.requested, $0.drainUntil) }
            let now = clock.now
            if stopping, let drainUntil, now >= drainUntil { break }
            if stopping, endpoints.allSatisfy({ $0.pending.isEmpty }) { break }

            // New requests, within each window and the rate, round-robin over
            // the sockets so a rate limit spreads the load evenly.
            var idle = 0
            while !stopping, idle < endpoints.count {
                let socketIndex = rotor
                let endpoint = endpoints[socketIndex]
                rotor = (rotor + 1) % endpoints.count
                var allowed = endpoint.pending.count < settings.window
                if allowed, let rate = settings.ratePerSecond {
                    let elapsed = now - started
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                    allowed = Double(created) < seconds * rate + 1
                }
                guard allowed else {
                    idle += 1
                    continue
                }
                idle = 0
                let request = make(socketIndex, endpoint.nextSequence)
                nextToken &+= 1
                endpoint.nextMessageID &+= 1
                let datagram = CoAPLoad.encodePost(messageID: endpoint.nextMessageID, token: nextToken, request: request)
                records.append(Record(socket: socketIndex, sequence: endpoint.nextSequence, payload: request.payload, code: nil))
                endpoint.nextSequence += 1
                created += 1
                endpoint.pending[nextToken] = Pending(record: records.count - 1, datagram: datagram, sentAt: now, retries: 0)
                send(datagram, on: endpoint)
                sent.add(1, ordering: .relaxed)
            }
            for endpoint in endpoints {
                // Retransmit, or give up.
                for (token, var pending) in endpoint.pending {
                    if let emptyAckAt = pending.emptyAckAt {
                        if now - emptyAckAt >= settings.separateResponseTimeout { endpoint.pending[token] = nil }
                        continue
                    }
                    let wait = settings.retransmitAfter * (1 << pending.retries)
                    guard now - pending.sentAt >= wait else { continue }
                    if pending.retries >= settings.maxRetransmit {
                        endpoint.pending[token] = nil
                        continue
                    }
                    pending.retries += 1
                    pending.sentAt = now
                    endpoint.pending[token] = pending
                    send(pending.datagram, on: endpoint)
                }
            }

            var fds = endpoints.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), 10)
            if ready <= 0 { continue }
            for (slot, entry) in fds.enumerated() where entry.revents & Int16(POLLIN | POLLERR) != 0 {
                let endpoint = endpoints[slot]
                while true {
                    let received = buffer.withUnsafeMutableBytes { recv(endpoint.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if received < 0 {
                        if errno == ECONNREFUSED { continue }  // reported once per ICMP; read on
                        break
                    }
                    guard let response = CoAPLoad.decode(Array(buffer[0..<received])) else { continue }
                    if response.type == 0 {
                        // A separate response (CON): acknowledge it.
                        send(CoAPLoad.emptyAck(messageID: response.messageID), on: endpoint)
                    }
                    if response.code == 0 {
                        // Empty ACK or RST for one of ours, matched by message ID.
                        guard let entry = endpoint.pending.first(where: {
                            CoAPLoad.messageID(of: $0.value.datagram) == response.messageID
                        }) else { continue }
                        if response.type == 3 {
                            endpoint.pending[entry.key] = nil
                        } else if endpoint.pending[entry.key]?.emptyAckAt == nil {
                            endpoint.pending[entry.key]?.emptyAckAt = clock.now
                        }
                        continue
                    }
                    guard let token = response.token, let pending = endpoint.pending[token] else { continue }
                    endpoint.pending[token] = nil
                    let code = "\(response.code >> 5).\(String(format: "%02d", response.code & 0x1F))"
                    records[pending.record].code = code
                    answered.add(1, ordering: .relaxed)
                    if code == "2.04" { acknowledgedCount.add(1, ordering: .relaxed) }
                }
            }
        }
        return Outcome(records: records)
    }
}
