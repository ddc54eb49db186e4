import Foundation
import GatewayCore
import Logging

/// Why the writer refused a message at once.
public enum OutboxRefusal: Error, Sendable, Equatable {
    /// `outbox.max_messages` or `outbox.max_bytes` would be exceeded.
    case full(OutboxCounts)
    /// The gateway is shutting down.
    case stopping
}

/// The outbox's only writer: a dedicated thread that groups every message
/// submitted while the previous transaction ran into the next one, so the cost
/// of a commit (an fsync under `sync: full`) is shared by the whole group.
///
/// Ingress threads call `submit` and never wait on disk; the completion runs on
/// the writer thread once the group is committed. Delivered rows come back
/// through `acknowledge` and are deleted in the same group transactions.
public final class OutboxWriter: Sendable {
    public typealias Completion = @Sendable (Result<Int64, OutboxError>) -> Void

    struct Pending: Sendable {
        var message: OutboundMessage
        var completion: Completion
    }

    struct State: Sendable {
        var pending: [Pending] = []
        var acknowledged: [(id: Int64, size: Int)] = []
        /// Stored plus pending: what capacity is checked against.
        var queued: OutboxCounts
        var accepting = true
        var stopRequested = false
        var finished = false
    }

    /// Largest group per transaction, so one burst cannot hold a transaction open for long.
    static let maxGroup = 2048

    private let outbox: Outbox
    private let limits: OutboxCounts
    private let logger: Logger
    private let onCommit: @Sendable () -> Void
    private let state: Guarded<State>

    /// - Parameter onCommit: called on the writer thread after each commit that
    ///   inserted rows, so the forwarder can look for them.
    public init(
        outbox: Outbox,
        maxMessages: Int,
        maxBytes: Int,
        logger: Logger,
        onCommit: @escaping @Sendable () -> Void
    ) throws(OutboxError) {
        self.outbox = outbox
        self.limits = OutboxCounts(messages: maxMessages, bytes: maxBytes)
        self.logger = logger
        self.onCommit = onCommit
        self.state = Guarded(State(queued: try outbox.counts()))
    }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "outbox-writer"
        thread.start()
    }

    /// Queues a message for the next group commit, or refuses it at once.
    public func submit(_ message: OutboundMessage, completion: @escaping Completion) throws(OutboxRefusal) {
        let refusal: OutboxRefusal? = state.update { state in
            guard state.accepting else { return .stopping }
            let size = message.storedSize
            if state.queued.messages + 1 > limits.messages || state.queued.bytes + size > limits.bytes {
                return .full(state.queued)
            }
            state.queued.messages += 1
            state.queued.bytes += size
            state.pending.append(Pending(message: message, completion: completion))
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Delivered rows, to be deleted with the next group.
    public func acknowledge(_ rows: [(id: Int64, size: Int)]) {
        guard !rows.isEmpty else { return }
        state.update { $0.acknowledged.append(contentsOf: rows) }
    }

    /// Messages and bytes stored or about to be.
    public var queued: OutboxCounts { state.withLock { $0.queued } }

    /// Refuses new messages from now on; those already submitted are still committed.
    public func stopAccepting() {
        state.update { $0.accepting = false }
    }

    /// Stops accepting, commits everything submitted or acknowledged so far,
    /// and returns once the writer thread has ended.
    public func shutdown() {
        state.update {
            $0.accepting = false
            $0.stopRequested = true
        }
        state.wait(until: { $0.finished }) { _ in }
    }

    private func run() {
        while let (group, acknowledged) = nextGroup() {
            commit(group, acknowledged)
        }
        state.update { $0.finished = true }
    }

    /// Waits for work; nil once stopping with nothing left to write.
    private func nextGroup() -> ([Pending], [(id: Int64, size: Int)])? {
        state.wait(until: { !$0.pending.isEmpty || !$0.acknowledged.isEmpty || $0.stopRequested }) { state in
            if state.pending.isEmpty && state.acknowledged.isEmpty { return nil }
            let count = min(state.pending.count, Self.maxGroup)
            let group = Array(state.pending.prefix(count))
            state.pending.removeFirst(count)
            let acknowledged = state.acknowledged
            state.acknowledged.removeAll(keepingCapacity: true)
            return (group, acknowledged)
        }
    }

    private func commit(_ group: [Pending], _ acknowledged: [(id: Int64, size: Int)]) {
        let result: Result<Outbox.CommitResult, OutboxError>
        do {
            result = .success(try outbox.commit(inserting: group.map(\.message), deleting: acknowledged))
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let commit):
            state.update {
                $0.queued.messages -= commit.removed.messages
                $0.queued.bytes -= commit.removed.bytes
            }
            for (pending, id) in zip(group, commit.ids) {
                pending.completion(.success(id))
            }
            if !group.isEmpty { onCommit() }
        case .failure(let error):
            logger.error("outbox commit failed", metadata: [
                "outbox.group": "\(group.count)",
                "outbox.acknowledged": "\(acknowledged.count)",
                "error": "\(error)",
            ])
            let bytes = group.reduce(0) { $0 + $1.message.storedSize }
            state.update {
                $0.queued.messages -= group.count
                $0.queued.bytes -= bytes
                // Deletions are retried with the next group; delivered rows
                // left behind would only be sent again, never lost.
                $0.acknowledged.insert(contentsOf: acknowledged, at: 0)
            }
            for pending in group {
                pending.completion(.failure(error))
            }
            // Do not spin on a failing disk.
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}
