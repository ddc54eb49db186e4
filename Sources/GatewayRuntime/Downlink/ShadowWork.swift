import Foundation
import GatewayCore
import Logging

/// The downlink thread's state: one subscription table per connection and
/// the requests in flight. Only `ShadowExchange.run` touches it.
struct ShadowWork {
    typealias Request = ShadowExchange.Request

    private let transports: [any DownlinkTransport]
    private let logger: Logger
    private var tables: [SubscriptionTable]
    /// Published, waiting for their answer, by client token.
    private var inFlight: [String: Request] = [:]
    /// Waiting for a SUBACK, by connection and filter.
    private var parked: [[String: [Request]]]

    init(transports: [any DownlinkTransport], capacity: Int, logger: Logger) {
        self.transports = transports
        self.logger = logger
        tables = Array(repeating: SubscriptionTable(capacity: capacity), count: transports.count)
        parked = Array(repeating: [:], count: transports.count)
    }

    var earliestDeadline: Deadline? {
        let waiting = parked.lazy.flatMap { $0.values.joined() }.map(\.deadline).min()
        let sent = inFlight.values.lazy.map(\.deadline).min()
        switch (waiting, sent) {
        case (let a?, let b?): return min(a, b)
        default: return waiting ?? sent
        }
    }

    mutating func send(_ request: Request) {
        let index = request.connection
        let filter = request.address.responses(request.operation)
        switch tables[index].use(filter) {
        case .active:
            publish(request)
        case .subscribing:
            parked[index][filter, default: []].append(request)
        case .subscribe(let evicting):
            for old in evicting { transports[index].unsubscribe(old) }
            parked[index][filter, default: []].append(request)
            subscribe(filter, on: index)
        case .full:
            finish(request, .failure(.unavailable(
                retryAfterSeconds: 5,
                reason: "every shadow subscription of the gateway's connection is in use; retry later"
            )), release: false)
        }
    }

    private mutating func subscribe(_ filter: String, on index: Int) {
        switch transports[index].subscribe(filter, qos: .atLeastOnce) {
        case .sent(let messageID):
            tables[index].sent(filter, messageID: messageID)
        case .notConnected:
            // Subscribed again at the next connect; its requests time out meanwhile.
            break
        case .rejected(let reason):
            tables[index].remove(filter)
            failParked(filter, on: index, .badGateway(reason: "cannot subscribe to \(filter): \(reason)"))
        }
    }

    private mutating func publish(_ request: Request) {
        let outcome = transports[request.connection].publish(
            topic: request.address.topic(request.operation), payload: request.payload, qos: .atLeastOnce, retain: false, expiresIn: nil
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
            for filter in tables[index].reconnected() { subscribe(filter, on: index) }
        case .disconnected:
            break
        case .subscribed(let messageID, let granted):
            let ok = granted.first.map { $0 < 0x80 } ?? false
            guard let filter = tables[index].acknowledged(messageID: messageID, granted: ok) else { return }
            if ok {
                for request in parked[index].removeValue(forKey: filter) ?? [] { publish(request) }
            } else {
                logger.warning("shadow subscription refused", metadata: [
                    "mqtt.filter": "\(filter)", "mqtt.granted": "\(granted.first ?? -1)", "upstream.connection": "\(index)",
                ])
                failParked(filter, on: index, .badGateway(
                    reason: "the broker refused the subscription to \(filter); the gateway's policy must allow iot:Subscribe and iot:Receive on it"
                ), release: false)
            }
        case .message(let topic, let payload):
            received(topic: topic, payload: payload)
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

    static func timedOut(_ request: Request) -> IngressRejection {
        .timeout(reason: "no answer from the shadow service for '\(request.address)' within \(String(format: "%g", request.timeout)) s")
    }

    /// Shutdown: everything still waiting hears 5.03.
    mutating func abandonAll() {
        let waiting = Array(inFlight.values) + parked.flatMap { $0.values.joined() }
        inFlight.removeAll()
        for index in parked.indices { parked[index].removeAll() }
        for request in waiting {
            request.completion(.failure(.unavailable(retryAfterSeconds: 5, reason: "gateway is shutting down; retry later")))
        }
    }

    private mutating func failParked(_ filter: String, on index: Int, _ rejection: IngressRejection, release: Bool = true) {
        for request in parked[index].removeValue(forKey: filter) ?? [] {
            finish(request, .failure(rejection), release: release)
        }
    }

    private mutating func finish(_ request: Request, _ result: Result<Acceptance, IngressRejection>, release: Bool = true) {
        if release { tables[request.connection].release(request.address.responses(request.operation)) }
        request.completion(result)
    }
}
