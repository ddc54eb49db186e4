internal import CMicroHTTPD
import GatewayCore

/// The MHD flags and limits a daemon is started with.
enum DaemonSettings {
    /// Internal epoll thread(s) so no caller lends its thread; suspend and
    /// resume so a request can wait for its commit without holding a worker;
    /// MHD's messages go to our logger.
    static func flags(for address: ListenAddress) -> UInt32 {
        var flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue
            | MHD_USE_EPOLL.rawValue
            | MHD_ALLOW_SUSPEND_RESUME.rawValue
            | MHD_USE_ERROR_LOG.rawValue
        if address.isIPv6 {
            // Without MHD_USE_DUAL_STACK, MHD sets IPV6_V6ONLY: `[::]` and
            // `0.0.0.0` on the same port can both be listed.
            flags |= MHD_USE_IPv6.rawValue
        }
        return flags
    }

    /// Every limit MHD would otherwise leave unlimited, set explicitly.
    /// Limits apply per listen address (one daemon each).
    static func limits(_ settings: HTTPSettings) -> iotgw_mhd_limits {
        iotgw_mhd_limits(
            // 1 means the daemon's own thread, no pool (the shim then leaves
            // the option out, which MHD would otherwise warn about).
            thread_pool_size: UInt32(clamping: max(1, settings.threads)),
            connection_limit: UInt32(clamping: max(1, settings.maxConnections)),
            per_ip_connection_limit: UInt32(clamping: max(1, settings.maxConnectionsPerIP)),
            // Suspended connections do not time out in MHD; idle ones do.
            connection_timeout: UInt32(clamping: max(1, settings.idleTimeout)),
            connection_memory_limit: connectionMemory,
            listen_backlog: UInt32(clamping: min(max(settings.maxConnections, 128), 4096))
        )
    }

    /// Per-connection pool for the request head and MHD's read and write
    /// buffers. Bodies are copied out into Swift as they arrive (bounded by
    /// max_body), so MHD's default of 32 KiB is plenty for device requests
    /// while it keeps `max_connections` × 32 KiB within a small box's memory.
    static let connectionMemory = 32 * 1024
}
