import Foundation
import GatewayCore
import Logging

/// Carries Device Shadow requests for shadow mappings: publishes `get` and
/// `update` on the thing's connection, subscribes on demand to the answers
/// (`…/get/+`, `…/update/+`), and answers each device from the `accepted`
/// or `rejected` message that echoes its `clientToken`, or with 5.04 when
/// none comes in time. Requests are never queued: while the connection is
/// down they are refused at once (5.03).
///
/// One thread (`downlink`) owns the subscription tables and the requests
/// in flight; ingress threads and libmosquitto's threads only add to its
/// inbox, so JSON is never parsed in a library callback.
public final class ShadowExchange: Sendable {
    public typealias Completion = @Sendable (Result<Acceptance, IngressRejection>) -> Void

    /// A request on its way, as the downlink thread tracks it.
    struct Request: Sendable {
        var token: String
        var address: ShadowAddress
        var operation: ShadowOperation
        var answer: ShadowBinding.Answer
        var payload: [UInt8]
        var deadline: Deadline
        var timeout: Double
        var completion: Completion
        var connection: Int
    }

    /// A device waiting for deltas: once (an HTTP long-poll, answered 204
    /// when its time is up) or for as long as it observes (CoAP).
    struct Watcher: Sendable {
        enum Mode: Sendable {
            case poll(deadline: Deadline, completion: Completion)
            case observe(events: @Sendable (ObservationEvent) -> Void)
        }

        var id: ObservationID
        var address: ShadowAddress
        var answer: ShadowBinding.Answer
        var connection: Int
        var mode: Mode

        var deadline: Deadline? {
            if case .poll(let deadline, _) = mode { return deadline }
            return nil
        }

        /// Tells the device the watch is over (`rejection`), or, for a poll
        /// that saw nothing, that nothing changed.
        func end(_ rejection: IngressRejection?) {
            switch mode {
            case .poll(_, let completion):
                completion(rejection.map { .failure($0) } ?? .success(.reply(DeviceReply(kind: .unchanged, body: []))))
            case .observe(let events):
                if let rejection { events(.ended(rejection)) }
            }
        }
    }

    struct Inbox: Sendable {
        var events: [(connection: Int, event: DownlinkEvent)] = []
        var requests: [Request] = []
        var watches: [Watcher] = []
        var unwatches: [ObservationID] = []
        var connected: [Bool]
        var stopped = false
    }

    private let transports: [any DownlinkTransport]
    private let inbox: Guarded<Inbox>
    private let thread = WorkerThread(name: "downlink")
    private let logger: Logger
    private let tokens: ClientTokens
    private let subscriptionCap: Int

    /// `subscriptionCap`: filters each connection may hold (AWS allows 50).
    public init(transports: [any DownlinkTransport], subscriptionCap: Int, gatewayName: String, logger: Logger) {
        self.transports = transports
        self.subscriptionCap = subscriptionCap
        self.logger = logger
        self.tokens = ClientTokens(gatewayName: gatewayName)
        inbox = Guarded(Inbox(connected: Array(repeating: false, count: transports.count)))
    }

    /// Listens to every connection; call before the connections start.
    public func start() {
        for (index, transport) in transports.enumerated() {
            transport.listen { [inbox] event in
                inbox.update { state in
                    switch event {
                    case .connected: state.connected[index] = true
                    case .disconnected: state.connected[index] = false
                    default: break
                    }
                    state.events.append((index, event))
                }
            }
        }
        let tableCap = subscriptionCap
        thread.start { [self] in run(capacity: tableCap) }
    }

    /// Refuses what is still waiting (5.03) and ends the thread.
    public func stop() {
        _ = thread.stop { inbox.update { $0.stopped = true } }
    }

    /// The connection that carries a thing's shadow traffic: always the
    /// same one, so its subscriptions are made once.
    func connection(for address: ShadowAddress) -> Int {
        ShardHash.shard(ShardHash.of(address.thing), of: transports.count)
    }

    /// Whether the thing's connection is up now.
    public func isConnected(_ address: ShadowAddress) -> Bool {
        let index = connection(for: address)
        return inbox.withLock { $0.connected[index] }
    }

    /// Sends a get or an update; `completion` runs once, on the downlink
    /// thread. Throws at once for a bad body or a connection that is down.
    public func request(
        _ operation: ShadowOperation, address: ShadowAddress, body: [UInt8], binding: ShadowBinding,
        completion: @escaping Completion
    ) throws(IngressRejection) {
        let token = tokens.next()
        let payload: [UInt8]
        switch operation {
        case .get:
            payload = ShadowMessages.getRequest(clientToken: token)
        case .update:
            switch ShadowMessages.updateRequest(body: body, clientToken: token) {
            case .success(let bytes): payload = bytes
            case .failure(let rejection): throw rejection
            }
        }
        let index = connection(for: address)
        let request = Request(
            token: token, address: address, operation: operation, answer: binding.answer, payload: payload,
            deadline: .after(binding.timeout), timeout: binding.timeout, completion: completion, connection: index
        )
        let taken = inbox.update { state -> Bool in
            guard !state.stopped, state.connected[index] else { return false }
            state.requests.append(request)
            return true
        }
        if !taken {
            throw .unavailable(retryAfterSeconds: 5, reason: "upstream is offline; shadow requests are not queued, retry later")
        }
    }

    private let watchIDs = Guarded<UInt64>(0)

    /// Starts delivering the shadow's deltas: to `completion` once (a
    /// long-poll of `wait` seconds), or to `events` until `unwatch`.
    public func watch(
        _ address: ShadowAddress, binding: ShadowBinding, poll wait: Double? = nil,
        completion: Completion? = nil, events: (@Sendable (ObservationEvent) -> Void)? = nil
    ) throws(IngressRejection) -> ObservationID {
        let id = ObservationID(watchIDs.update { count -> UInt64 in
            count += 1
            return count
        })
        let mode: Watcher.Mode
        if let wait, let completion {
            mode = .poll(deadline: .after(wait), completion: completion)
        } else if let events {
            mode = .observe(events: events)
        } else {
            throw .internalError(reason: "a watch needs a poll completion or an event sink")
        }
        let index = connection(for: address)
        let watcher = Watcher(id: id, address: address, answer: binding.answer, connection: index, mode: mode)
        let taken = inbox.update { state -> Bool in
            guard !state.stopped, state.connected[index] else { return false }
            state.watches.append(watcher)
            return true
        }
        if !taken {
            throw .unavailable(retryAfterSeconds: 5, reason: "upstream is offline; shadow changes cannot be followed now, retry later")
        }
        return id
    }

    /// Stops a watch; nothing more is delivered to it.
    public func unwatch(_ id: ObservationID) {
        inbox.update { $0.unwatches.append(id) }
    }

    // MARK: - The downlink thread

    private func run(capacity: Int) {
        var work = ShadowWork(transports: transports, capacity: capacity, logger: logger)
        while true {
            thread.beat()
            let earliest = work.earliestDeadline
            let taken = thread.idle { inbox.wait(
                until: {
                    $0.stopped || !$0.events.isEmpty || !$0.requests.isEmpty || !$0.watches.isEmpty || !$0.unwatches.isEmpty
                        || (earliest?.hasPassed ?? false)
                },
                deadline: earliest ?? .after(60)
            ) { state -> Inbox in
                let taken = state
                state.events.removeAll(keepingCapacity: true)
                state.requests.removeAll(keepingCapacity: true)
                state.watches.removeAll(keepingCapacity: true)
                state.unwatches.removeAll(keepingCapacity: true)
                return taken
            } }
            let stopped = taken.stopped
            for id in taken.unwatches { work.remove(id) }
            for (connection, event) in taken.events { work.handle(event, on: connection) }
            for request in taken.requests { work.send(request) }
            for watcher in taken.watches { work.add(watcher) }
            work.expire(now: .now())
            work.expirePolls(now: .now())
            if stopped {
                work.abandonAll()
                return
            }
        }
    }
}

/// Client tokens unique across instances and restarts: the gateway's name,
/// a random per-process part and a counter, within AWS's 64 bytes.
final class ClientTokens: Sendable {
    private let prefix: String
    private let counter = Guarded<UInt64>(0)

    init(gatewayName: String) {
        let random = String(UInt64.random(in: .min ... .max), radix: 36)
        prefix = String(gatewayName.prefix(32)) + ":" + random + ":"
    }

    func next() -> String {
        let value = counter.update { count -> UInt64 in
            count += 1
            return count
        }
        return prefix + String(value, radix: 36)
    }
}
