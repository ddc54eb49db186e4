import Foundation
import GatewayCore
import GatewayStore
import Logging

/// Everything that flows down to devices. Shadow mappings: publishes `get`
/// and `update` on the thing's connection, subscribes on demand to the
/// answers (`…/get/+`, `…/update/+`), and answers each device from the
/// `accepted` or `rejected` message that echoes its `clientToken`, or with
/// 5.04 when none comes in time (requests are never queued: while the
/// connection is down they are refused at once, 5.03); devices following a
/// shadow get its deltas. Command mappings: subscribes to a device's
/// command filter when it first asks, delivers what arrives to it, and keeps
/// what arrives while it is away (`CommandStore`).
///
/// One thread (`downlink`) owns the subscription tables and the requests
/// in flight; ingress threads and libmosquitto's threads only add to its
/// inbox, so JSON is never parsed in a library callback.
public final class Downlink: Sendable {
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

    /// A device waiting for a shadow's deltas or its commands: once (an
    /// HTTP long-poll, answered 204 when its time is up; a plain GET of
    /// commands, whose time is up at once) or for as long as it observes (CoAP).
    struct Watcher: Sendable {
        enum Mode: Sendable {
            case poll(deadline: Deadline, completion: Completion)
            case observe(events: @Sendable (ObservationEvent) -> Void)
        }

        enum Source: Sendable {
            case delta(ShadowAddress, ShadowBinding.Answer)
            case commands(Mailbox)
        }

        var id: ObservationID
        var source: Source
        var connection: Int
        var mode: Mode

        /// The topic filter it follows.
        var filter: String {
            switch source {
            case .delta(let address, _): return address.deltas
            case .commands(let mailbox): return mailbox.filter
            }
        }

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
        var unwatches: [(id: ObservationID, undelivered: DeviceReply?)] = []
        var connected: [Bool]
        var stopped = false
    }

    private let transports: [any DownlinkTransport]
    private let inbox: Guarded<Inbox>
    private let thread = WorkerThread(name: "downlink")
    private let logger: Logger
    private let tokens: ClientTokens
    private let subscriptionCap: Int
    private let store: CommandStore?

    /// `subscriptionCap`: filters each connection may hold (AWS allows 50).
    /// `store`: where commands for absent devices are kept; nil keeps none.
    public init(
        transports: [any DownlinkTransport], subscriptionCap: Int, gatewayName: String, store: CommandStore? = nil, logger: Logger
    ) {
        self.transports = transports
        self.store = store
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
        try enqueue(.delta(address, binding.answer), connection: connection(for: address), wait: wait, completion: completion, events: events)
    }

    /// A device reads or follows its commands: a plain GET (`wait` nil with
    /// a completion) takes the oldest kept one or hears "none" (2.03 / 204);
    /// a long-poll waits up to `wait` seconds for one; an observer gets each
    /// as it arrives. The mailbox is followed from now on, so what arrives
    /// while the device is away is kept for it.
    public func listen(
        _ mailbox: Mailbox, poll wait: Double? = nil,
        completion: Completion? = nil, events: (@Sendable (ObservationEvent) -> Void)? = nil
    ) throws(IngressRejection) -> ObservationID {
        let index = ShardHash.shard(ShardHash.of(mailbox.filter), of: transports.count)
        return try enqueue(.commands(mailbox), connection: index, wait: wait ?? (events == nil ? 0 : nil), completion: completion, events: events)
    }

    private func enqueue(
        _ source: Watcher.Source, connection index: Int, wait: Double?,
        completion: Completion?, events: (@Sendable (ObservationEvent) -> Void)?
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
        let watcher = Watcher(id: id, source: source, connection: index, mode: mode)
        let offlineMatters: Bool
        if case .delta = source { offlineMatters = true } else { offlineMatters = false }
        let taken = inbox.update { state -> Bool in
            // Commands kept on disk can be read while upstream is down.
            guard !state.stopped, state.connected[index] || !offlineMatters else { return false }
            state.watches.append(watcher)
            return true
        }
        if !taken {
            throw .unavailable(retryAfterSeconds: 5, reason: "upstream is offline; shadow changes cannot be followed now, retry later")
        }
        return id
    }

    /// Stops a watch; nothing more is delivered to it. `undelivered`: the
    /// notification the device did not acknowledge, kept again if it was a command.
    public func unwatch(_ id: ObservationID, undelivered: DeviceReply? = nil) {
        inbox.update { $0.unwatches.append((id, undelivered)) }
    }

    // MARK: - The downlink thread

    private func run(capacity: Int) {
        var work = DownlinkWork(transports: transports, capacity: capacity, store: store, logger: logger)
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
            // Watches before requests, so an observer's SUBSCRIBE for the
            // deltas leaves before its GET; unwatches last, so one that
            // came with its watch finds it.
            for (connection, event) in taken.events { work.handle(event, on: connection) }
            for watcher in taken.watches { work.add(watcher) }
            for request in taken.requests { work.send(request) }
            for (id, undelivered) in taken.unwatches { work.stopWatching(id, undelivered: undelivered) }
            work.expire(now: .now())
            work.expirePolls(now: .now())
            work.purgeKept(now: .now())
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
