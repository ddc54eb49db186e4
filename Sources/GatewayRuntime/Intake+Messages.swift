import GatewayCore
import GatewayStore

/// From shaped payloads to outbox messages, and batches into the outbox.
extension Intake {
    /// The messages to publish, each checked against the broker's limits.
    static func messages(
        _ shaped: [ShapedMessage], request: IngressRequest, route: Route, limits: UpstreamLimits
    ) throws(IngressRejection) -> [OutboundMessage] {
        let rule = route.rule
        // One shard for a whole batch, so its messages arrive in order.
        let shard = ShardHash.of(route.shardKey)
        var messages: [OutboundMessage] = []
        messages.reserveCapacity(shaped.count)
        for (index, item) in shaped.enumerated() {
            let element = rule.batch ? "element \(index): " : ""
            var topic = route.topic
            if let name = item.recordName, route.topicPerRecord {
                switch route.topic(forRecord: name) {
                case .success(let rendered): topic = rendered
                case .failure(let rejection): throw .badRequest(reason: element + rejection.reason + "; nothing was accepted")
                }
            }
            if let limit = limits.maxPayloadBytes, item.payload.count > limit {
                let what = rule.payload == .envelope ? "with its envelope " : ""
                throw .payloadTooLarge(limit: limit, reason: "\(element)payload \(what)would be \(item.payload.count) bytes; the broker accepts up to \(limit)")
            }
            messages.append(OutboundMessage(
                topic: topic, qos: rule.qos, retain: rule.retain,
                payload: item.payload, receivedAt: request.receivedAt, mapping: rule.name,
                expiresAt: rule.expiry.map { request.receivedAt.addingTimeInterval($0) },
                shardHash: shard
            ))
        }
        return messages
    }

    /// A batch: committed in one transaction (QoS 1) or queued together
    /// (QoS 0), answered with its count.
    func submitBatch(
        _ messages: [OutboundMessage], rule: MappingRule,
        completion: @escaping @Sendable (Result<Acceptance, IngressRejection>) -> Void
    ) throws(IngressRejection) -> IngressAdmission {
        let count = messages.count
        let admission: BatchAdmission
        do {
            admission = try outbox.submitBatch(messages) { [self] result in
                switch result {
                case .success: completion(.success(.storedBatch(count: count)))
                case .failure(let error): completion(.failure(notStored(error, mapping: rule.name, what: "batch")))
                }
            }
        } catch {
            throw Self.refusal(error)
        }
        switch admission {
        case .pending: return .pending
        case .queued: return .answered(.storedBatch(count: count))
        }
    }

    /// A commit that failed: 5.03 when the disk is full (a retry may
    /// succeed once space is freed), else 5.00, logged once a minute.
    func notStored(_ error: OutboxError, mapping: String, what: String) -> IngressRejection {
        if case .diskFull = error {
            return .unavailable(retryAfterSeconds: Self.retryAfterFull, reason: "gateway storage is full")
        }
        if case .log(let suppressed) = failures.check("message not stored") {
            logger.error("message not stored", metadata: [
                "mapping": "\(mapping)", "error": "\(error)", "log.repeats_not_logged": "\(suppressed)",
            ])
        }
        return .internalError(reason: "\(what) could not be stored")
    }

    static func refusal(_ error: OutboxRefusal) -> IngressRejection {
        switch error {
        case .full:
            return .unavailable(retryAfterSeconds: retryAfterFull, reason: "gateway queue is full; retry later")
        case .storageFull:
            return .unavailable(retryAfterSeconds: retryAfterFull, reason: "gateway storage is full; retry later")
        case .stopping:
            return .unavailable(retryAfterSeconds: retryAfterFull, reason: "gateway is shutting down; retry later")
        }
    }
}
