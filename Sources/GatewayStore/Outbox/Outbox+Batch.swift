import Foundation
import GatewayCore

/// What `submitBatch` did with a batch it did not refuse.
public enum BatchAdmission: Sendable, Equatable {
    /// QoS 1: the messages join one commit; the completion follows.
    case pending
    /// QoS 0: queued in memory (those for a disconnected connection under
    /// `qos0_when_offline: drop` are dropped, as single ones are).
    case queued
}

extension Outbox {
    /// Admits every message of a batch or none. QoS 1 messages go into one
    /// transaction and `completion` runs once, after it; QoS 0 messages are
    /// queued now and no completion follows.
    public func submitBatch(
        _ messages: [OutboundMessage],
        completion: @escaping @Sendable (Result<Void, OutboxError>) -> Void
    ) throws(OutboxRefusal) -> BatchAdmission {
        guard let qos = messages.first?.qos else { return .queued }
        let collector = BatchCompletion(count: messages.count, completion: completion)
        let bytes = messages.reduce(0) { $0 + $1.storedSize }
        let largest = messages.map(\.storedSize).max() ?? 0
        var shed = 0
        var dropped = 0
        let now = MonotonicClock.now()
        let result: Result<BatchAdmission, OutboxRefusal> = state.update { state in
            guard state.accepting else { return .failure(.stopping) }
            if state.storageFull && qos.isDurable {
                state.refusedWhileFull += 1
                return .failure(.storageFull)
            }
            guard state.capacity.fits(messages: messages.count, bytes: bytes, largest: largest, qos: qos) else { return .failure(.full) }
            for (index, message) in messages.enumerated() {
                let lane = ShardHash.shard(message.shardHash, of: state.lanes.count)
                // `fits` left room for all of them once QoS 0 entries are
                // shed, so each admission succeeds.
                switch state.capacity.admit(message, lane: lane, lanes: &state.lanes, shed: &shed) {
                case .success(.pending):
                    state.commits.insert(
                        .init(message: message, completion: collector.one, batchRest: messages.count - index - 1), now: now
                    )
                case .success(.queued):
                    let sequence = state.nextSequence
                    state.nextSequence += 1
                    state.lanes[lane].volatile.append(VolatileEntry(sequence: sequence, message: message))
                case .success(.dropped):
                    dropped += 1
                case .failure:
                    dropped += 1
                }
            }
            return .success(qos.isDurable ? .pending : .queued)
        }
        if shed > 0 { observer.messagesShed(count: shed) }
        switch result {
        case .success(let admission):
            if admission == .queued {
                if dropped > 0 { observer.messagesDropped(reason: "offline", qos: .atMostOnce, count: dropped) }
                for _ in dropped..<messages.count { observer.messageAccepted(qos: .atMostOnce, mapping: messages[0].mapping) }
                onVisible.withLock { $0 }?.run()
            }
            return admission
        case .failure(let refusal):
            countRefusal(refusal)
            throw refusal
        }
    }
}

/// Turns the per-message completions of one batch (one transaction, so
/// they all succeed or all fail) into one call.
final class BatchCompletion: Sendable {
    private let remaining: Guarded<Int>
    private let completion: @Sendable (Result<Void, OutboxError>) -> Void

    init(count: Int, completion: @escaping @Sendable (Result<Void, OutboxError>) -> Void) {
        remaining = Guarded(count)
        self.completion = completion
    }

    /// The completion of one message.
    var one: Outbox.Completion {
        { [self] result in
            let call: Result<Void, OutboxError>? = remaining.withLock { left in
                guard left > 0 else { return nil }
                switch result {
                case .success:
                    left -= 1
                    return left == 0 ? .success(()) : nil
                case .failure(let error):
                    left = 0
                    return .failure(error)
                }
            }
            if let call { completion(call) }
        }
    }
}
