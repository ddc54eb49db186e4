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
            return ipv4(UInt32(bigEndian: copy.sin.sin_addr.s_addr), port: port)
        case AF_INET6:
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            inet_ntop(AF_INET6, &copy.sin6.sin6_addr, &buffer, socklen_t(buffer.count))
            return "[\(text(from: buffer))]:\(port)"
        default:
            return "unknown"
        }
    }

    /// Written digit by digit: this runs for every datagram, and
    /// `inet_ntop` formats IPv4 through `sprintf` (about 1 % of the gateway's
    /// CPU under load, with the buffer and the interpolation).
    static func ipv4(_ address: UInt32, port: UInt16) -> String {
        String(unsafeUninitializedCapacity: 21) { buffer in
            var count = 0
            func put(_ value: UInt32) {
                if value >= 100 { buffer[count] = UInt8(48 + value / 100); count += 1 }
                if value >= 10 { buffer[count] = UInt8(48 + value / 10 % 10); count += 1 }
                buffer[count] = UInt8(48 + value % 10); count += 1
            }
            for shift in stride(from: 24, through: 0, by: -8) {
                put((address >> UInt32(shift)) & 0xFF)
                buffer[count] = shift == 0 ? UInt8(ascii: ":") : UInt8(ascii: "."); count += 1
            }
            var digits = 1
            var rest = port / 10
            while rest > 0 { digits += 1; rest /= 10 }
            var value = port
            for index in stride(from: count + digits - 1, through: count, by: -1) {
                buffer[index] = UInt8(48 + value % 10); value /= 10
            }
            return count + digits
        }
    }

    private static func text(from buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
