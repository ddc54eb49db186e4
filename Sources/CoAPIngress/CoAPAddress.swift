import CCoAP
import GatewayCore
import Glibc

/// Conversions between listen addresses, libcoap addresses and peer strings.
enum CoAPAddress {
    static func make(_ listen: ListenAddress) -> coap_address_t? {
        var address = coap_address_t()
        coap_address_init(&address)
        if listen.isIPv6 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = listen.port.bigEndian
            guard inet_pton(AF_INET6, listen.host, &sin6.sin6_addr) == 1 else { return nil }
            address.addr.sin6 = sin6
            address.size = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = listen.port.bigEndian
            guard inet_pton(AF_INET, listen.host, &sin.sin_addr) == 1 else { return nil }
            address.addr.sin = sin
            address.size = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        return address
    }

    /// `ip:port` or `[ip]:port`.
    static func describe(_ address: UnsafePointer<coap_address_t>) -> String {
        let port = coap_address_get_port(address)
        var copy = address.pointee.addr
        switch Int32(address.pointee.addr.sa.sa_family) {
        case AF_INET:
            return PeerText.ipv4(UInt32(bigEndian: copy.sin.sin_addr.s_addr), port: port)
        case AF_INET6:
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            inet_ntop(AF_INET6, &copy.sin6.sin6_addr, &buffer, socklen_t(buffer.count))
            return "[\(text(from: buffer))]:\(port)"
        default:
            return "unknown"
        }
    }

    private static func text(from buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A peer's address and port as a value: duplicate detection keys its
/// answers by it, which hashes a few words where the `ip:port` text cost a
/// String hash on every request.
struct PeerKey: Hashable {
    /// IPv6: the address's first and last eight bytes; IPv4: `low` only.
    private var high: UInt64 = 0
    private var low: UInt64 = 0
    /// The port, and the family above it.
    private var portAndFamily: UInt32 = 0

    init() {}

    init(ipv4 address: UInt32, port: UInt16) {
        low = UInt64(address)
        portAndFamily = UInt32(AF_INET) << 16 | UInt32(port)
    }

    init(_ address: UnsafePointer<coap_address_t>) {
        let port = coap_address_get_port(address)
        switch Int32(address.pointee.addr.sa.sa_family) {
        case AF_INET:
            self.init(ipv4: UInt32(bigEndian: address.pointee.addr.sin.sin_addr.s_addr), port: port)
        case AF_INET6:
            let halves = withUnsafeBytes(of: address.pointee.addr.sin6.sin6_addr) { raw in
                (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
            self.init()
            high = halves.0
            low = halves.1
            portAndFamily = UInt32(AF_INET6) << 16 | UInt32(port)
        default:
            self.init()
        }
    }
}
