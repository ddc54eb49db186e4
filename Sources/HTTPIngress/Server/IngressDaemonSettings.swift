internal import CMicroHTTPD
import GatewayCore

/// The MHD flags and limits an ingress daemon is started with.
enum IngressDaemonSettings {
    static func options(_ settings: HTTPSettings) -> DaemonOptions {
        DaemonOptions(flags: flags, limits: limits(settings))
    }

    /// The TLS daemons: the same limits, and MHD's TLS (GnuTLS) with the
    /// files `TLSMaterial` read.
    static func secureOptions(_ settings: HTTPSettings, material: TLSMaterial) -> DaemonOptions {
        DaemonOptions(flags: flags | MHD_USE_TLS.rawValue, limits: limits(settings), tls: material)
    }

    /// Internal epoll thread(s) (`DaemonSet.commonFlags`), plus suspend and
    /// resume so a request can wait for its commit without holding a worker.
    static let flags = MHD_ALLOW_SUSPEND_RESUME.rawValue

    /// Every limit MHD would otherwise leave unlimited, set explicitly.
    /// Limits apply per listen address (one daemon each), TLS ones included.
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
    /// max_body), so the pool only holds a head. libmicrohttpd 0.9.75 zeroes
    /// the whole pool after every request: at MHD's default of 32 KiB that
    /// memset was 4.7 % of the gateway's CPU under HTTPS load, at 8 KiB
    /// 0.7 %. A head over about 6 KiB is MHD's 431 (LiveServerTests).
    static let connectionMemory = 8 * 1024
}
