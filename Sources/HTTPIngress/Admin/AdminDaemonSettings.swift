internal import CMicroHTTPD

/// The MHD flags and limits of an admin daemon: a handful of scrapers and
/// probes, never devices, so everything is small and fixed.
enum AdminDaemonSettings {
    /// Only `DaemonSet.commonFlags`: one internal epoll thread answers
    /// everything (the handler is quick). No suspend/resume: nothing waits.
    static let options = DaemonOptions(flags: 0, limits: limits)

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
