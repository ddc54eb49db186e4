#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks for IP address literals, through the C library's own parser.
enum IPAddressText {
    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    /// The address's bytes (4 for IPv4, 16 for IPv6), to compare addresses
    /// however they are written (`::` and `0:0:0:0:0:0:0:0`); empty when it
    /// is not an IP literal.
    static func bytes(_ text: String, ipv6: Bool) -> [UInt8] {
        if ipv6 {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return [] }
            return withUnsafeBytes(of: &raw) { Array($0) }
        }
        var raw = in_addr()
        guard inet_pton(AF_INET, text, &raw) == 1 else { return [] }
        return withUnsafeBytes(of: &raw) { Array($0) }
    }
}
