import Foundation
import GatewayCore
import Logging

/// What the writer does when the disk is full: refuse QoS 1 at once (a
/// refusal as cheap as any other 5.03 / 503), give up the reserve and
/// checkpoint so that deletions of delivered rows can still commit (delivery
/// goes on), and look for room once a second, accepting again as soon as
/// there is some. One log line when it starts, one when it ends, and at
/// most one a minute in between.
extension Outbox {
    /// How often the writer looks for room while the disk is full.
    static let storageProbeInterval = 1.0

    /// A commit failed for want of space.
    func storageFilled() {
        let now = MonotonicClock.now()
        let first = state.update { state -> Bool in
            defer {
                state.storageFull = true
                state.nextStorageProbe = now + Self.storageProbeInterval
            }
            return !state.storageFull
        }
        guard first else { return }
        reserve?.release()
        let checkpointed = (try? store.checkpoint()) != nil
        logger.error("outbox storage is full; refusing new QoS 1 messages until there is room", metadata: [
            "outbox.path": "\(store.path)",
            "disk.reserve_released": "\(reserve?.bytes ?? 0)",
            "outbox.checkpointed": "\(checkpointed)",
        ])
    }

    var storageProbeDue: Bool {
        state.withLock { MonotonicClock.now() >= $0.nextStorageProbe }
    }

    /// Room again when the reserve can be taken back with as much again to
    /// spare; then QoS 1 is accepted again.
    func probeStorage() {
        // What delivery deleted goes back to the filesystem, and the WAL is emptied.
        try? store.releaseSpace()
        let free = DiskReserve.freeBytes(at: (store.path as NSString).deletingLastPathComponent) ?? 0
        let needed = 2 * (reserve?.bytes ?? 512 * 1024)
        guard free >= needed, reserve?.take() ?? true else {
            state.update { $0.nextStorageProbe = MonotonicClock.now() + Self.storageProbeInterval }
            return
        }
        let refused = state.update { state -> Int in
            defer { state.refusedWhileFull = 0 }
            state.storageFull = false
            state.nextStorageProbe = .infinity
            return state.refusedWhileFull
        }
        let held = failures.reset(Self.commitFailure)
        logger.notice("outbox storage has room again; accepting", metadata: [
            "disk.free": "\(free)", "outbox.refused_while_full": "\(refused)", "outbox.failed_commits_not_logged": "\(held)",
        ])
    }

    static let commitFailure = "outbox commit failed"
}
