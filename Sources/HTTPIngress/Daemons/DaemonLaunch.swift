#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CMicroHTTPD
import GatewayCore

/// What a server's daemons are started with, beyond what all share.
struct DaemonOptions: Sendable {
    /// Added to `DaemonSet.commonFlags`.
    var flags: UInt32
    var limits: iotgw_mhd_limits
    /// Set for TLS daemons (whose `flags` include `MHD_USE_TLS`).
    var tls: TLSMaterial? = nil
}

extension DaemonSet {
    /// Internal polling thread(s), so no caller lends its thread; epoll
    /// rather than MHD's default select(), which fails on descriptors above
    /// 1024, and the gateway holds many; MHD's messages go to our logger.
    static var commonFlags: UInt32 {
        MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue | MHD_USE_ERROR_LOG.rawValue
    }

    func flags(for address: ListenAddress) -> UInt32 {
        var flags = Self.commonFlags | options.flags
        if address.isIPv6 {
            // Without MHD_USE_DUAL_STACK, MHD sets IPV6_V6ONLY: `[::]` and
            // `0.0.0.0` on the same port can both be listed.
            flags |= MHD_USE_IPv6.rawValue
        }
        return flags
    }

    /// Starts the daemon for one address; called under the state lock.
    func startDaemon(_ address: ListenAddress) throws(ListenerStartError<Listener>) -> Daemon {
        guard var socketAddress = SocketAddress.make(address) else { throw .invalidAddress(address) }
        let context = callbacks.context
        // No completion callback without a completion handler: nothing is
        // allocated per request then.
        let completed: MHD_RequestCompletedCallback? = callbacks.completion == nil ? nil : completedTrampoline
        logSink.lastMessage.withLock { $0 = nil }
        errno = 0
        let daemon = withTLSOptions { tls in
            withUnsafePointer(to: &socketAddress) { storage in
                storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddr in
                    // MHD binds during this call; the address need not outlive it.
                    iotgw_mhd_start(
                        flags(for: address), sockaddr,
                        acceptPolicyTrampoline, context,
                        accessTrampoline, context,
                        completed, completed == nil ? nil : context,
                        keepEscapes, nil,
                        logSink.pointer, options.limits, tls
                    )
                }
            }
        }
        let code = errno
        guard let daemon else {
            // MHD leaves bind's errno in place (it only closes and frees after).
            let reason = code != 0
                ? String(cString: strerror(code))
                : logSink.lastMessage.withLock { $0 } ?? "libmicrohttpd could not start a daemon"
            throw .bindFailed(address: address, reason: reason)
        }
        return Daemon(pointer: daemon)
    }

    /// The TLS options for the shim, nil for a plain daemon. MHD reads the
    /// struct during the start call only; the PEM text it points to lives
    /// as long as `options`.
    private func withTLSOptions<Result>(_ body: (UnsafePointer<iotgw_mhd_tls>?) -> Result) -> Result {
        guard let material = options.tls else { return body(nil) }
        var tls = iotgw_mhd_tls(
            key_pem: material.key.pointer, cert_pem: material.certificate.pointer,
            trust_pem: material.trust?.pointer,
            notify: secureConnectionNotice, notify_cls: nil
        )
        return withUnsafePointer(to: &tls) { body($0) }
    }
}
