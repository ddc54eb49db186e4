import Foundation
import GatewayCore
import GatewayStore
import Logging

/// The downlink thread's state: one subscription table per connection and
/// the requests in flight. Only `Downlink.run` touches it.
struct DownlinkWork {
    typealias Request = Downlink.Request
    typealias Watcher = Downlink.Watcher

    let transports: [any DownlinkTransport]
    let logger: Logger
    var tables: [SubscriptionTable]
    /// Published, waiting for their answer, by client token.
    var inFlight: [String: Request] = [:]
    /// Waiting for a SUBACK, by connection and filter.
    var parked: [[String: [Request]]]
    /// Devices following deltas or commands, and who follows which filter.
    var watchers: [ObservationID: Watcher] = [:]
    var following: [String: Set<ObservationID>] = [:]
    /// Command filters followed (also while nobody listens), by filter.
    var mailboxes: [String: Mailbox] = [:] {
        // Parsed once per mailbox, not once per mailbox and command.
        didSet { commandFilters = mailboxes.keys.compactMap { try? TopicFilter($0) } }
    }
    private(set) var commandFilters: [TopicFilter] = []
    /// Filters of an earlier run that no longer fit: unsubscribed at the next connect.
    var pendingUnsubscribes: [(connection: Int, filter: String)] = []
    /// The newest delta version delivered per followed shadow.
    var lastDeltaVersion: [ShadowAddress: Int] = [:]
    let store: CommandStore?
    var nextPurge = Deadline.after(60)

    init(transports: [any DownlinkTransport], capacity: Int, store: CommandStore?, logger: Logger) {
        self.transports = transports
        self.logger = logger
        self.store = store
        tables = Array(repeating: SubscriptionTable(capacity: capacity), count: transports.count)
        parked = Array(repeating: [:], count: transports.count)
        restoreFollowed()
    }

    var earliestDeadline: Deadline? {
        let waiting = parked.lazy.flatMap { $0.values.joined() }.map(\.deadline).min()
        let sent = inFlight.values.lazy.map(\.deadline).min()
        let polls = watchers.values.lazy.compactMap(\.deadline).min()
        return [waiting, sent, polls].compactMap { $0 }.min()
    }

    /// AWS IoT Core takes at most 10 shadow requests in flight per thing and
    /// throttles the rest; refusing the 11th here says so sooner and costs no publish.
    static let maxInFlightPerThing = 10

    mutating func send(_ request: Request) {
        let thing = request.address.thing
        let waiting = inFlight.values.lazy.filter { $0.address.thing == thing }.count
            + parked[request.connection].values.lazy.joined().filter { $0.address.thing == thing }.count
        if waiting >= Self.maxInFlightPerThing {
            finish(request, .failure(.tooManyRequests(
                retryAfterSeconds: 1, reason: "\(Self.maxInFlightPerThing) shadow requests for '\(thing)' are already waiting; retry shortly"
            )), release: false)
            return
        }
        let index = request.connection
        let filter = request.address.responses(request.operation)
        switch tables[index].use(filter) {
        case .active:
            publish(request)
        case .subscribing:
            parked[index][filter, default: []].append(request)
        case .subscribe(let evicting):
            evict(evicting, on: index)
            record(filter, on: index)
            parked[index][filter, default: []].append(request)
            subscribe(filter, on: index)
        case .full:
            finish(request, .failure(.unavailable(
                retryAfterSeconds: 5,
                reason: "every shadow subscription of the gateway's connection is in use; retry later"
            )), release: false)
        }
    }

    /// An UNSUBSCRIBE, or one owed until the next connect: the broker keeps
    /// a persistent session's subscriptions while the gateway is away.
    mutating func unsubscribe(_ filter: String, on index: Int) {
        if !transports[index].unsubscribe(filter) { pendingUnsubscribes.append((index, filter)) }
    }

    mutating func subscribe(_ filter: String, on index: Int) {
        switch transports[index].subscribe(filter, qos: .atLeastOnce) {
        case .sent(let messageID):
            tables[index].sent(filter, messageID: messageID)
        case .notConnected:
            // Subscribed again at the next connect; its requests time out meanwhile.
            break
        case .rejected(let reason):
            tables[index].remove(filter)
            forget(filter)
            failParked(filter, on: index, .badGateway(reason: "cannot subscribe to \(filter): \(reason)"))
        }
    }

    private mutating func publish(_ request: Request) {
        let outcome = transports[request.connection].publish(
            // QoS 0: a request is answered or times out; at QoS 1 libmosquitto
            // would resend it after every reconnect, and one AWS refuses (and
            // disconnects for, under MQTT 3.1.1) would drop the connection again.
            topic: request.address.topic(request.operation), payload: request.payload, qos: .atMostOnce, retain: false, expiresIn: nil
        )
        switch outcome {
        case .inFlight:
            inFlight[request.token] = request
        case .notConnected:
            finish(request, .failure(.unavailable(retryAfterSeconds: 5, reason: "upstream is offline; shadow requests are not queued, retry later")))
        case .rejected(let reason):
            finish(request, .failure(.badGateway(reason: "the shadow request cannot be published: \(reason)")))
        }
    }

    mutating func handle(_ event: DownlinkEvent, on index: Int) {
        switch event {
        case .connected:
            let stale = pendingUnsubscribes.filter { $0.connection == index }
            pendingUnsubscribes.removeAll { $0.connection == index }
            for (_, filter) in stale { unsubscribe(filter, on: index) }
            for filter in tables[index].reconnected() { subscribe(filter, on: index) }
        case .disconnected:
            break
        case .subscribed(let messageID, let granted):
            let ok = granted.first.map { $0 < 0x80 } ?? false
            guard let filter = tables[index].acknowledged(messageID: messageID, granted: ok) else { return }
            if ok {
                logger.debug("subscription granted", metadata: ["mqtt.filter": "\(filter)", "upstream.connection": "\(index)"])
                for request in parked[index].removeValue(forKey: filter) ?? [] { publish(request) }
            } else {
                logger.warning("subscription refused", metadata: [
                    "mqtt.filter": "\(filter)", "mqtt.granted": "\(granted.first ?? -1)", "upstream.connection": "\(index)",
                ])
                let refusal = IngressRejection.badGateway(
                    reason: "the broker refused the subscription to \(filter); the gateway's policy must allow iot:Subscribe and iot:Receive on it"
                )
                failParked(filter, on: index, refusal, release: false)
                endWatchers(of: filter, refusal)
            }
        case .message(let topic, let payload, let retained):
            logger.debug("downlink message", metadata: [
                "mqtt.topic": "\(topic)", "mqtt.bytes": "\(payload.count)", "mqtt.retained": "\(retained)", "upstream.connection": "\(index)",
            ])
            if !topic.hasPrefix("$aws/things/") {
                // A retained command would come again at every resubscribe
                // (each connect): it would run again each time.
                guard !retained else {
                    logger.notice("retained command ignored", metadata: [
                        "mqtt.topic": "\(topic)", "reason": "commands must be published without the retain flag",
                    ])
                    return
                }
                deliverCommand(topic: topic, payload: payload)
            } else if topic.hasSuffix("/update/delta") {
                deliverDelta(topic: topic, payload: payload)
            } else {
                received(topic: topic, payload: payload)
            }
        }
    }

    private mutating func received(topic: String, payload: [UInt8]) {
        let accepted = topic.hasSuffix("/accepted")
        guard accepted || topic.hasSuffix("/rejected") else { return }
        // Answers to other clients' requests (another gateway instance, an
        // application) arrive on the same topics: only our tokens count.
        guard let answer = ShadowMessages.decode(payload), let token = answer.clientToken,
              let request = inFlight[token] else { return }
        let suffix = accepted ? "/accepted" : "/rejected"
        guard topic == request.address.topic(request.operation) + suffix else { return }
        inFlight.removeValue(forKey: token)
        let result = answer.reply(accepted: accepted, operation: request.operation, answer: request.answer, address: request.address)
        finish(request, result.map { .reply($0) })
    }

    /// Answers 5.04 to every request whose time is up.
    mutating func expire(now: Deadline) {
        let late = inFlight.values.filter { $0.deadline <= now }
        for request in late {
            inFlight.removeValue(forKey: request.token)
            finish(request, .failure(Self.timedOut(request)))
        }
        for index in parked.indices {
            for (filter, requests) in parked[index] {
                let (due, rest) = (requests.filter { $0.deadline <= now }, requests.filter { $0.deadline > now })
                guard !due.isEmpty else { continue }
                parked[index][filter] = rest.isEmpty ? nil : rest
                for request in due { finish(request, .failure(Self.timedOut(request))) }
            }
        }
    }

    /// Long-polls whose wait is over hear "unchanged" (HTTP 204).
    mutating func expirePolls(now: Deadline) {
        let due = watchers.values.filter { ($0.deadline ?? .init(seconds: .infinity)) <= now }
        for watcher in due {
            remove(watcher.id)
            watcher.end(nil)
        }
    }

    static func timedOut(_ request: Request) -> IngressRejection {
        .timeout(reason: "no answer from the shadow service for '\(request.address)' within \(String(format: "%g", request.timeout)) s")
    }

    /// Shutdown: everything still waiting hears 5.03.
    mutating func abandonAll() {
        let waiting = Array(inFlight.values) + parked.flatMap { $0.values.joined() }
        inFlight.removeAll()
        for index in parked.indices { parked[index].removeAll() }
        let stopping = IngressRejection.unavailable(retryAfterSeconds: 5, reason: "gateway is shutting down; retry later")
        for request in waiting { request.completion(.failure(stopping)) }
        let ended = Array(watchers.values)
        watchers.removeAll()
        following.removeAll()
        for watcher in ended { watcher.end(stopping) }
    }

    mutating func failParked(_ filter: String, on index: Int, _ rejection: IngressRejection, release: Bool = true) {
        for request in parked[index].removeValue(forKey: filter) ?? [] {
            finish(request, .failure(rejection), release: release)
        }
    }

    mutating func finish(_ request: Request, _ result: Result<Acceptance, IngressRejection>, release: Bool = true) {
        if release { tables[request.connection].release(request.address.responses(request.operation)) }
        request.completion(result)
    }
}
