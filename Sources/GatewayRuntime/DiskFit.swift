import GatewayCore
import GatewayStore
import Logging

extension Parts {
    /// Sizes the outbox to the disk its state directory is on (see
    /// `StorageBudget`): lowers `max_bytes` when the disk could not hold it
    /// (and says so), and takes the reserve that lets delivered rows be
    /// deleted when the disk fills anyway.
    static func fitToDisk(
        _ configured: OutboxSettings, state: StateDirectory, logger: Logger
    ) -> (OutboxSettings, StorageBudget, DiskReserve) {
        let paths = state.paths
        let reserveHeld = DiskReserve.sizes(of: [paths.reserve])
        let free = DiskReserve.freeBytes(at: state.path) ?? Int.max / 4
        let budget = StorageBudget(
            freeBytes: free, usedBytes: DiskReserve.sizes(of: paths.databaseFiles) + reserveHeld,
            configuredMaxBytes: configured.maxBytes
        )
        var settings = configured
        settings.maxBytes = budget.maxBytes
        if budget.lowered {
            logger.warning("outbox.max_bytes lowered to what the disk can hold", metadata: [
                "outbox.max_bytes": "\(configured.maxBytes)", "outbox.max_bytes_in_force": "\(budget.maxBytes)",
                "disk.free": "\(free)", "outbox.path": "\(state.path)",
            ])
        }
        let reserve = DiskReserve(path: paths.reserve, bytes: budget.reserveBytes)
        if reserveHeld != budget.reserveBytes { reserve.release() }
        if !reserve.isHeld && !reserve.take() {
            logger.warning("no room for the disk reserve; a full disk may stop deletions until space is freed", metadata: [
                "disk.reserve": "\(budget.reserveBytes)", "disk.free": "\(free)", "outbox.path": "\(state.path)",
            ])
        }
        return (settings, budget, reserve)
    }
}
