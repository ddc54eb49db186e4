import Foundation
import GatewayCore
import Logging

/// The writer thread: takes what `CommitQueue` says is due, commits it in
/// one transaction, then completes the submitters, makes the new rows
/// visible to the forwarders and tells each lane how many of its deletions
/// settled.
extension Outbox {
    func runWriter() {
        while let work = nextWork() {
            writer.beat()
            if let work { commit(work) }
            if storageProbeDue { probeStorage() }
        }
    }

    /// The work due now, `.some(nil)` when the wait ended with nothing due
    /// (look again), nil once stopping with nothing left.
    private func nextWork() -> CommitQueue.Work?? {
        let (seen, check) = state.withLock { ($0.commits.generation, min($0.commits.nextCheck(), $0.nextStorageProbe)) }
        return writer.idle { state.wait(
            until: {
                $0.stopRequested || $0.commits.generation != seen
                    || $0.commits.isDue(now: MonotonicClock.now(), stopping: $0.stopRequested)
                    || MonotonicClock.now() >= $0.nextStorageProbe
            },
            deadline: Deadline(seconds: check)
        ) { state -> CommitQueue.Work?? in
            if let work = state.commits.take(now: MonotonicClock.now(), stopping: state.stopRequested) { return .some(work) }
            return state.stopRequested && state.commits.isEmpty ? nil : .some(nil)
        } }
    }

    private func commit(_ work: CommitQueue.Work) {
        if work.sweep {
            let now = Date()
            let expired = state.withLock { state in
                state.lanes.indices.reduce(0) { $0 + state.lanes[$1].volatile.removeExpired(at: now) }
            }
            if expired > 0 { observer.messagesExpired(qos: .atMostOnce, count: expired) }
        }
        guard !work.group.isEmpty || !work.deletions.isEmpty || work.sweep else { return }
        let started = MonotonicClock.now()
        do {
            let result = try store.commit(
                inserting: work.group.map(\.message),
                deleting: work.deletions.filter { !$0.expired }.map { ($0.id, $0.size) },
                expiring: work.deletions.filter(\.expired).map { ($0.id, $0.size) },
                // Expiry times travel with the message: wall clock.
                expireBefore: work.sweep ? Date() : nil
            )
            committed(work, result, started: started)
        } catch {
            failed(work, error)
        }
    }

    private func committed(_ work: CommitQueue.Work, _ result: OutboxStore.CommitResult, started: Double) {
        let ended = MonotonicClock.now()
        observer.commitFinished(messages: work.group.count, deletions: work.deletions.count, seconds: ended - started)
        state.update {
            $0.commits.committed(now: ended)
            $0.capacity.release(OutboxCounts(
                messages: result.removed.messages + result.expired.messages,
                bytes: result.removed.bytes + result.expired.bytes
            ))
            $0.writable = true
        }
        if result.expired.messages > 0 {
            observer.messagesExpired(qos: .atLeastOnce, count: result.expired.messages)
            // Logged for the periodic sweep only: forwarders meet expired
            // rows a batch at a time, which would be a line per commit.
            if work.sweep {
                logger.info("expired messages dropped", metadata: ["outbox.expired": "\(result.expired.messages)"])
            }
        }
        for (pending, id) in zip(work.group, result.ids) {
            observer.messageAccepted(qos: pending.message.qos, mapping: pending.message.mapping)
            pending.completion(.success(id))
        }
        if let last = result.ids.last {
            state.update { state in
                for (pending, id) in zip(work.group, result.ids) {
                    let lane = ShardHash.shard(pending.message.shardHash, of: state.lanes.count)
                    state.lanes[lane].recent.append(StoredMessage(id: id, message: pending.message))
                }
                state.visibleThrough = max(state.visibleThrough, last)
            }
            onVisible.withLock { $0 }?.run()
        }
        if !work.deletions.isEmpty {
            var settled = [Int](repeating: 0, count: lanes.count)
            for row in work.deletions { settled[row.lane] += 1 }
            for (lane, count) in zip(lanes, settled) where count > 0 { lane.settled(count) }
        }
    }

    private func failed(_ work: CommitQueue.Work, _ error: OutboxError) {
        if case .diskFull = error { storageFilled() }
        if case .log(let suppressed) = failures.check(Self.commitFailure) {
            logger.error("outbox commit failed", metadata: [
                "outbox.group": "\(work.group.count)",
                "outbox.acknowledged": "\(work.deletions.count)",
                "error": "\(error)",
                "log.repeats_not_logged": "\(suppressed)",
            ])
        }
        let bytes = work.group.reduce(0) { $0 + $1.message.storedSize }
        let now = MonotonicClock.now()
        let stopping = state.update { state -> Bool in
            state.writable = false
            state.capacity.release(OutboxCounts(messages: work.group.count, bytes: bytes))
            // Stopping: no retry, so the stop is bounded whatever the disk does.
            if !state.stopRequested { state.commits.retry(work.deletions, now: now) }
            return state.stopRequested
        }
        for pending in work.group {
            pending.completion(.failure(error))
        }
        if stopping {
            if !work.deletions.isEmpty {
                logger.notice("stopping with delivered messages not deleted; they will be sent again after the restart", metadata: [
                    "outbox.undeleted": "\(work.deletions.count)", "error": "\(error)",
                ])
            }
            return
        }
        // Do not spin on a failing disk.
        Thread.sleep(forTimeInterval: 0.1)
    }
}
