internal import CMicroHTTPD
import GatewayCore

/// The MHD flags and limits of an admin daemon: a handful of scrapers and
/// probes, never devices, so everything is small and fixed.
enum AdminDaemonSettings {
    /// One internal thread answers everything (the handler is quick). epoll
    /// rather than MHD's default select(), which fails on descriptors above
    /// 1024, and the gateway holds many. No suspend/resume: nothing waits.
    static func flags(for address: ListenAddress) -> UInt32 {
        var flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue
            | MHD_USE_EPOLL.rawValue
            | MHD_USE_ERROR_LOG.rawValue
        if address.isIPv6 {
            // IPV6_V6ONLY, as for the HTTP ingress.
            flags |= MHD_USE_IPv6.rawValue
        }
        return flags
    }

    /// Every limit MHD would otherwise leave unlimited, set explicitly.
    static let limits = iotgw_mhd_limits(
        thread_pool_size: 1,
        connection_limit: 16,
        per_ip_connection_limit: 8,
        // Seconds: a stuck or idle client cannot hold a slot for long.
        connection_timeout: 10,
        // Requests are a line and a few headers; the /metrics answer is
        // copied into MHD's response, outside this pool.
        connection_memory_limit: 32 * 1024,
        listen_backlog: 16
    )
}
