import CBORCodec
import Foundation
import GatewayCore
import GatewayStore
import Logging

/// The ingress pipeline: routes a request with the current mapping table,
/// builds the message to publish, and hands it to the outbox; for `ack:
/// delivered` mappings it also waits for the broker through the tracker.
public final class Intake: IngressPipeline {
    /// Seconds a device is told to wait when the outbox is full.
    static let retryAfterFull = 5

    /// Swapped whole by a reload; each request routes with the table it
    /// read first, so it is handled entirely by the old or the new one.
    private let table: Guarded<Router>
    let outbox: Outbox
    private let tracker: DeliveryTracker
    private let security: DeviceSecurity
    /// Carries shadow and command mappings' requests; nil in tests of the uplink alone.
    private let downlink: Downlink?
    /// Reads CBOR bodies for `payload: json` and `payload: senml` mappings.
    private let cbor: any CBORDecoding
    let logger: Logger
    /// A failing disk fails every request: one line a minute, with a count.
    let failures = LogThrottle(interval: 60)

    /// The mapping table requests are routed with now.
    private var router: Router { table.withLock { $0 } }

    /// Routes every request from now on with `router`.
    public func replaceRouter(_ router: Router) {
        table.withLock { $0 = router }
    }

    public init(
        router: Router, outbox: Outbox, tracker: DeliveryTracker, security: DeviceSecurity, downlink: Downlink? = nil,
        cbor: any CBORDecoding = CBORDecoder(), logger: Logger
    ) {
        self.cbor = cbor
        table = Guarded(router)
        self.outbox = outbox
        self.tracker = tracker
        self.security = security
        self.downlink = downlink
        self.logger = logger
    }

    public func accept(
        _ request: IngressRequest,
        completion: @escaping @Sendable (Result<Acceptance, IngressRejection>) -> Void
    ) throws(IngressRejection) -> IngressAdmission {
        let router = self.router
        let route = try authorizedRoute(request, router: router)
        let rule = route.rule
        if let binding = rule.commands {
            guard let downlink else { throw .internalError(reason: "command mappings are not available in this gateway") }
            let wait = try Self.pollSeconds(request)
            _ = try downlink.listen(Mailbox(filter: route.topic, binding: binding), poll: wait, completion: completion)
            return .pending
        }
        let shaped: [ShapedMessage]
        if let binding = rule.shadow {
            guard let queued = try shadowRequest(request, route: route, binding: binding, completion: completion) else {
                return .pending
            }
            // An update kept through an outage goes out like a reading.
            shaped = [ShapedMessage(payload: queued)]
        } else {
            shaped = try PayloadShaper(cbor: cbor, gateway: router.gatewayName).shape(request, route: route)
        }
        let messages = try Self.messages(shaped, request: request, route: route, limits: router.limits)
        if rule.batch {
            return try submitBatch(messages, rule: rule, completion: completion)
        }
        let message = messages[0]
        let waitForBroker = rule.ack == .delivered
        let tracker = self.tracker
        let answerDelivery: @Sendable (Bool) -> Void = { delivered in
            completion(delivered
                ? .success(.delivered)
                : .failure(.timeout(reason: "not yet acknowledged by the broker; the message stays queued")))
        }

        let admission: Admission
        do {
            admission = try outbox.submit(
                message,
                onQueued: waitForBroker ? { sequence in
                    tracker.register(.volatile(sequence), timeout: rule.ackTimeout, completion: answerDelivery)
                } : nil
            ) { [self] result in
                switch result {
                case .success(let id):
                    if waitForBroker {
                        tracker.register(.row(id), timeout: rule.ackTimeout, completion: answerDelivery)
                    } else {
                        completion(.success(.stored))
                    }
                case .failure(let error):
                    completion(.failure(notStored(error, mapping: rule.name, what: "message")))
                }
            }
        } catch {
            throw Self.refusal(error)
        }
        switch admission {
        case .pending:
            return .pending
        case .queued:
            return waitForBroker ? .pending : .answered(.stored)
        case .dropped:
            // QoS 0 while offline: accepted at most once, as MQTT QoS 0 is.
            if waitForBroker {
                throw .timeout(reason: "upstream is offline and QoS 0 messages are not kept")
            }
            return .answered(.stored)
        }
    }

    /// Hands a shadow mapping's request to the exchange (nil: the completion
    /// follows), or returns the update to queue when the mapping keeps
    /// updates through an outage and the connection is down.
    private func shadowRequest(
        _ request: IngressRequest, route: Route, binding: ShadowBinding,
        completion: @escaping @Sendable (Result<Acceptance, IngressRejection>) -> Void
    ) throws(IngressRejection) -> [UInt8]? {
        guard let downlink, let address = ShadowAddress(updateTopic: route.topic) else {
            throw .internalError(reason: "shadow mappings are not available in this gateway")
        }
        let operation: ShadowOperation = request.method == .get ? .get : .update
        if operation == .get, let wait = try Self.pollSeconds(request) {
            // A long-poll: the next delta, or 204 when none came in time.
            _ = try downlink.watch(address, binding: binding, poll: wait, completion: completion)
            return nil
        }
        if operation == .update, binding.offline == .queue, !downlink.isConnected(address) {
            switch ShadowMessages.updateRequest(body: request.payload, clientToken: nil) {
            case .success(let bytes): return bytes
            case .failure(let rejection): throw rejection
            }
        }
        try downlink.request(operation, address: address, body: request.payload, binding: binding, completion: completion)
        return nil
    }

    /// The longest HTTP long-poll of a shadow's deltas: under common proxy
    /// and load-balancer idle timeouts.
    static let maxPollSeconds = 120.0

    /// `?wait=N` of a GET: seconds to wait for a change (nil: none asked).
    static func pollSeconds(_ request: IngressRequest) throws(IngressRejection) -> Double? {
        guard let text = request.query["wait"] else { return nil }
        guard let wait = Double(text), (1...maxPollSeconds).contains(wait) else {
            throw .badRequest(reason: "wait must be a number of seconds from 1 to \(Int(maxPollSeconds))")
        }
        return wait
    }

    /// CoAP Observe of a shadow mapping (the GET's answer first, then each
    /// delta) or a commands mapping (a kept command or nothing, then each
    /// command). Other mappings cannot be observed (nil: answered as a plain request).
    public func observe(
        _ request: IngressRequest, events: @escaping @Sendable (ObservationEvent) -> Void
    ) throws(IngressRejection) -> ObservationID? {
        guard request.method == .get, let downlink else { return nil }
        let router = self.router
        guard case .success(let found) = router.match(request), found.rule.shadow != nil || found.rule.commands != nil else { return nil }
        let route = try authorizedRoute(request, router: router, matched: found)
        if let commands = route.rule.commands {
            return try downlink.listen(Mailbox(filter: route.topic, binding: commands), events: events)
        }
        guard let binding = route.rule.shadow, let address = ShadowAddress(updateTopic: route.topic) else { return nil }
        // Following first, so no delta falls between the read and the watch.
        let id = try downlink.watch(address, binding: binding, events: events)
        do {
            try downlink.request(.get, address: address, body: [], binding: binding) { result in events(.initial(result)) }
        } catch {
            downlink.unwatch(id)
            throw error
        }
        return id
    }

    public func cancel(_ observation: ObservationID, undelivered: DeviceReply?) {
        downlink?.unwatch(observation, undelivered: undelivered)
    }

    /// Credentials that prove nothing see what an anonymous client sees.
    public func discover(_ request: IngressRequest, filters: [Discovery.Filter]) -> String {
        var device: Device?
        if case .device(let who) = security.authenticate(request) { device = who }
        return Discovery.document(Discovery.links(rules: router.rules, device: device), filters: filters)
    }

    /// Routes the request and checks who sent it: 4.04 / 4.05 first (the
    /// mapping table is not a secret), then a lockout (4.29), then 4.01 /
    /// 4.03. Refusals for who sent it count towards a lockout; nothing of a
    /// refused request is queued.
    /// `matched`: the caller's own `router.match` of this request, not done twice.
    private func authorizedRoute(_ request: IngressRequest, router: Router, matched: RouteMatch? = nil) throws(IngressRejection) -> Route {
        let found: RouteMatch
        if let matched {
            found = matched
        } else {
            switch router.match(request) {
            case .success(let match): found = match
            case .failure(let rejection): throw rejection
            }
        }
        let needsIdentity = found.rule.auth == .device || (request.transport == .secure && request.credential != .none)
        if needsIdentity, let wait = security.lockout(request) {
            let seconds = max(1, Int(wait.rounded(.up)))
            throw .tooManyRequests(retryAfterSeconds: seconds, reason: "too many failed attempts; retry in \(seconds) s")
        }
        let authentication = security.authenticate(request)
        // A bearer token or a certificate names its device only now.
        if needsIdentity, case .device(let who) = authentication, request.credential.claimedIdentity == nil,
           let wait = security.lockout(request, device: who.id) {
            let seconds = max(1, Int(wait.rounded(.up)))
            throw .tooManyRequests(retryAfterSeconds: seconds, reason: "too many refused requests; retry in \(seconds) s")
        }
        let device: Device?
        switch router.authorize(found, authentication: authentication, transport: request.transport) {
        case .success(let authorized):
            device = authorized
        case .failure(let rejection):
            var authenticated: String?
            if case .device(let who) = authentication { authenticated = who.id }
            security.recordFailure(request, device: authenticated)
            logger.info("device request refused", metadata: [
                "device.id": "\(authenticated ?? request.credential.claimedIdentity ?? "-")",
                "ingress.peer": "\(request.peer)",
                "ingress.protocol": "\(request.ingress.rawValue)",
                "mapping": "\(found.rule.name)",
                "reason": "\(rejection.reason)",
            ])
            throw rejection
        }
        switch router.build(found, device: device) {
        case .success(let route): return route
        case .failure(let rejection): throw rejection
        }
    }
}
