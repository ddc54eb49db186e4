import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Many CoAP CON POSTs from many source ports at once, for the load and fault
/// tests (one `coap-client` process per request would measure process
/// start-up, not the gateway). A small RFC 7252 client on plain UDP sockets,
/// one thread running a `poll()` loop. Two ways to use it:
///
/// - a fixed list (`run(port:requests:sockets:window:)`): request i from
///   socket i % sockets; `run` returns once every request has its final
///   answer or has been given up;
/// - a stream (`run(port:settings:make:)`, or `during`): request `n` of socket
///   `s` is `make(s, n)`, until `stop` (or until `make` returns nil). A test
///   that wants per-topic order gives each socket its own topic and a window
///   of 1: the next request is only sent once the previous one has its final
///   answer, so acceptance order is send order. An optional rate limit
///   spreads the load evenly and keeps a long test from piling up messages.
///
/// Each socket keeps at most `window` requests outstanding. Retransmission as
/// RFC 7252 (ACK timeout doubling, `maxRetransmit`), a separate CON response
/// is ACKed, an RST ends the request. Every wait is bounded: a request whose
/// separate response does not come within `separateResponseTimeout` of its
/// empty ACK (a gateway killed after the empty ACK never sends it), or which
/// is not acknowledged at all after the last retransmission, ends without a
/// code, and `run` returns after `timeout` whatever happens. Only a final
/// 2.04 counts as acknowledged by the gateway.
final class CoAPLoad: Sendable {
    struct Request: Sendable {
        var path: [String]
        var payload: [UInt8]
        var contentFormat: Int? = nil
    }

    /// One request sent, and its final response code (`"2.04"`…), nil if none arrived.
    struct Record: Sendable {
        var socket: Int
        var sequence: Int
        var payload: [UInt8]
        var code: String?
        var text: String { String(decoding: payload, as: UTF8.self) }
    }

    struct Outcome: Sendable {
        /// Every request sent, in the order first sent.
        var records: [Record]
        /// Requests of a fixed list that were never sent (stopped, or `timeout`).
        var unsent = 0
        /// Payload texts of the requests answered 2.04.
        var acknowledged: Set<String> { Set(records.filter { $0.code == "2.04" }.map(\.text)) }
        /// Final codes; `none`: sent but no final answer; `unsent`: see `unsent`.
        var histogram: [String: Int] {
            var counts = records.reduce(into: [:]) { $0[$1.code ?? "none", default: 0] += 1 }
            if unsent > 0 { counts["unsent"] = unsent }
            return counts
        }
    }

    struct Settings: Sendable {
        var sockets = 8
        var window = 4
        /// Requests per second over all sockets; nil: as fast as answers come.
        var ratePerSecond: Double? = nil
        /// RFC 7252 ACK_TIMEOUT (without the random factor); doubles per retransmission.
        var retransmitAfter: Duration = .seconds(2)
        var maxRetransmit = 4
        /// How long a request waits for its separate response after an empty ACK.
        var separateResponseTimeout: Duration = .seconds(30)
        /// Hard bound on `run`, whatever happens.
        var timeout: Duration = .seconds(120)
    }

    /// Requests sent (first transmissions), final answers and 2.04s so far,
    /// readable while it runs.
    let sent = Atomic<Int>(0)
    let answered = Atomic<Int>(0)
    let acknowledgedCount = Atomic<Int>(0)
    /// Whether `stop` was called, and until when outstanding requests may finish.
    private let stopState = Mutex<(requested: Bool, drainUntil: ContinuousClock.Instant?)>((false, nil))

    init() {}

    /// Sends no new request from now on; outstanding ones may still finish
    /// for `drain`, after which `run` returns.
    func stop(drain: Duration = .zero) {
        stopState.withLock { $0 = (true, ContinuousClock.now.advanced(by: drain)) }
    }

    /// Waits for `count` more final answers (any code), or with
    /// `acknowledged`, `count` more 2.04s. Generously: a loaded 2-core
    /// machine may answer slowly, but never not at all.
    func waitFor(
        _ count: Int, acknowledged: Bool = false, _ when: String, timeout: Duration = .seconds(60)
    ) async throws {
        let current = { acknowledged ? self.acknowledgedCount.load(ordering: .relaxed) : self.answered.load(ordering: .relaxed) }
        let base = current()
        try await eventually(timeout: timeout, "\(count) more CoAP \(acknowledged ? "2.04s" : "answers") \(when) (\(progress))") {
            current() >= base + count ? true : nil
        }
    }

    /// The counters, for failure messages.
    var progress: String {
        "CoAP load: sent \(sent.load(ordering: .relaxed)), answered \(answered.load(ordering: .relaxed)), "
            + "2.04 \(acknowledgedCount.load(ordering: .relaxed))"
    }

    /// A fixed list: request i from socket i % sockets, at most `window`
    /// outstanding per socket.
    func run(
        port: UInt16,
        requests: [Request],
        sockets: Int,
        window: Int,
        timeout: Duration = .seconds(120)
    ) async throws -> Outcome {
        let settings = Settings(sockets: sockets, window: window, timeout: timeout)
        var outcome = try await run(port: port, settings: settings) { socket, sequence in
            let index = socket + sequence * sockets
            return index < requests.count ? requests[index] : nil
        }
        outcome.unsent = requests.count - outcome.records.count
        return outcome
    }

    /// A stream: request `sequence` of socket `socket` is `make(socket,
    /// sequence)`; a socket whose `make` returns nil sends nothing more. Runs
    /// until `stop` (plus its drain), until every socket is done, or for
    /// `settings.timeout`.
    func run(
        port: UInt16,
        settings: Settings = Settings(),
        make: @escaping @Sendable (_ socket: Int, _ sequence: Int) -> Request?
    ) async throws -> Outcome {
        // Cancelled (a test failed and its `async let` is torn down): stop soon.
        try await withTaskCancellationHandler {
            try await onOwnThread("coap-load") { try self.loop(port: port, settings: settings, make: make) }
        } onCancel: {
            self.stop()
        }
    }

    private struct Pending {
        var record: Int
        var datagram: [UInt8]
        var sentAt: ContinuousClock.Instant
        var retries: Int
        /// An empty ACK arrived: a separate response should follow; no more retransmissions.
        var emptyAckAt: ContinuousClock.Instant?
    }

    private final class Endpoint {
        let fd: Int32
        var pending: [UInt32: Pending] = [:]  // by token
        var nextSequence = 0
        var nextMessageID = UInt16.random(in: 0...UInt16.max)
        /// `make` returned nil: nothing more to send from this socket.
        var exhausted = false
        init(fd: Int32) { self.fd = fd }
    }

    private func loop(
        port: UInt16, settings: Settings, make: (_ socket: Int, _ sequence: Int) -> Request?
    ) throws -> Outcome {
        var records: [Record] = []
        var endpoints: [Endpoint] = []
        defer { for endpoint in endpoints { close(endpoint.fd) } }
        for _ in 0..<settings.sockets {
            let fd = socket(AF_INET, socketDatagram, 0)
            guard fd >= 0 else { throw HarnessError("socket(): \(String(cString: strerror(errno)))") }
            do {
                try LoopbackPorts.bindClientUDP(fd)
            } catch {
                close(fd)
                throw error
            }
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

        /// Reads every datagram waiting (after up to `waiting` ms for the first).
        func receive(waiting milliseconds: Int32) {
            var fds = endpoints.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), milliseconds) > 0 else { return }
            for (slot, entry) in fds.enumerated() where entry.revents & Int16(POLLIN | POLLERR) != 0 {
                let endpoint = endpoints[slot]
                while true {
                    let received = buffer.withUnsafeMutableBytes { recv(endpoint.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if received < 0 {
                        if errno == ECONNREFUSED { continue }  // reported once per ICMP; read on
                        break
                    }
                    guard let response = Self.decode(Array(buffer[0..<received])) else { continue }
                    if response.type == 0 {
                        // A separate response (CON): acknowledge it.
                        send(Self.emptyAck(messageID: response.messageID), on: endpoint)
                    }
                    if response.code == 0 {
                        // Empty ACK or RST for one of ours, matched by message ID.
                        guard let entry = endpoint.pending.first(where: {
                            Self.messageID(of: $0.value.datagram) == response.messageID
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

        while clock.now < deadline {
            let (stopping, drainUntil) = stopState.withLock { ($0.requested, $0.drainUntil) }
            let now = clock.now
            if stopping, let drainUntil, now >= drainUntil { break }
            let idleEverywhere = endpoints.allSatisfy { $0.pending.isEmpty }
            if idleEverywhere, stopping || endpoints.allSatisfy(\.exhausted) { break }

            // New requests, within each window and the rate, round-robin over
            // the sockets so a rate limit spreads the load evenly.
            var idle = 0
            while !stopping, idle < endpoints.count {
                let socketIndex = rotor
                let endpoint = endpoints[socketIndex]
                rotor = (rotor + 1) % endpoints.count
                var allowed = !endpoint.exhausted && endpoint.pending.count < settings.window
                if allowed, let rate = settings.ratePerSecond {
                    allowed = Double(created) < Self.seconds(now - started) * rate + 1
                }
                guard allowed else {
                    idle += 1
                    continue
                }
                guard let request = make(socketIndex, endpoint.nextSequence) else {
                    endpoint.exhausted = true
                    idle += 1
                    continue
                }
                idle = 0
                nextToken &+= 1
                endpoint.nextMessageID &+= 1
                let datagram = Self.encodePost(messageID: endpoint.nextMessageID, token: nextToken, request: request)
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

            receive(waiting: 10)
        }
        // Answers already in the sockets' buffers still count (a gateway
        // that answered and exited just before `stop`).
        receive(waiting: 0)
        return Outcome(records: records)
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
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

extension CoAPLoad {
    /// Runs a stream (see `run(port:settings:make:)`) while `body` runs, then
    /// stops it, lets outstanding requests finish for up to `drain`, and
    /// returns what `body` returned with the outcome. If `body` throws, the
    /// load is stopped at once and awaited before the error (with the load's
    /// counters added) goes on, so no generator outlives its test.
    static func during<T>(
        port: UInt16,
        settings: Settings,
        drain: Duration = .seconds(10),
        make: @escaping @Sendable (_ socket: Int, _ sequence: Int) -> Request?,
        _ body: (CoAPLoad) async throws -> T
    ) async throws -> (result: T, outcome: Outcome) {
        let load = CoAPLoad()
        async let outcome = load.run(port: port, settings: settings, make: make)
        let result: T
        do {
            result = try await body(load)
        } catch {
            load.stop()
            _ = try? await outcome
            throw HarnessError("\(error)\n(\(load.progress))")
        }
        load.stop(drain: drain)
        return (result, try await outcome)
    }
}
