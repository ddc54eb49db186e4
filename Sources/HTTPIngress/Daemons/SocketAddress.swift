#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GatewayCore

/// C socket addresses, built from and turned back into text.
enum SocketAddress {
    /// The `sockaddr_in` / `sockaddr_in6` for a listen address, for
    /// `MHD_OPTION_SOCK_ADDR`; nil when the host is not an IP literal.
    static func make(_ address: ListenAddress) -> sockaddr_storage? {
        var storage = sockaddr_storage()
        let parsed: Bool = withUnsafeMutableBytes(of: &storage) { raw in
            if address.isIPv6 {
                var v6 = sockaddr_in6()
                v6.sin6_family = sa_family_t(AF_INET6)
                v6.sin6_port = address.port.bigEndian
                guard inet_pton(AF_INET6, address.host, &v6.sin6_addr) == 1 else { return false }
                raw.storeBytes(of: v6, as: sockaddr_in6.self)
            } else {
                var v4 = sockaddr_in()
                v4.sin_family = sa_family_t(AF_INET)
                v4.sin_port = address.port.bigEndian
                guard inet_pton(AF_INET, address.host, &v4.sin_addr) == 1 else { return false }
                raw.storeBytes(of: v4, as: sockaddr_in.self)
            }
            return true
        }
        return parsed ? storage : nil
    }

    /// `ip:port`, or `[v6]:port`, for `IngressRequest.peer`.
    static func describe(_ address: UnsafePointer<sockaddr>) -> String {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            let v4 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self)
            return PeerText.ipv4(UInt32(bigEndian: v4.sin_addr.s_addr), port: UInt16(bigEndian: v4.sin_port))
        case AF_INET6:
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            var v6 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in6.self)
            guard inet_ntop(AF_INET6, &v6.sin6_addr, &text, socklen_t(text.count)) != nil else { return "unknown" }
            return "[\(string(text))]:\(UInt16(bigEndian: v6.sin6_port))"
        default:
            return "unknown"
        }
    }

    private static func string(_ text: [CChar]) -> String {
        String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
