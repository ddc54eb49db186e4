import CCoAP
import Glibc
import GatewayCore
import Testing
@testable import CoAPIngress

@Suite("Peer addresses as text")
struct CoAPAddressTests {
    /// The hand-written IPv4 form must read exactly as inet_ntop's.
    @Test(arguments: [
        ("127.0.0.1", UInt16(5683)), ("0.0.0.0", 0), ("255.255.255.255", 65535), ("10.200.3.40", 9), ("192.168.100.1", 10000),
    ])
    func ipv4MatchesInetNtop(_ host: String, _ port: UInt16) throws {
        var address = in_addr()
        #expect(inet_pton(AF_INET, host, &address) == 1)
        #expect(CoAPAddress.ipv4(UInt32(bigEndian: address.s_addr), port: port) == "\(host):\(port)")
    }

    @Test func ipv6IsBracketed() throws {
        let address = try #require(CoAPAddress.make(ListenAddress(host: "::1", port: 5684)))
        #expect(withUnsafePointer(to: address) { CoAPAddress.describe($0) } == "[::1]:5684")
    }
}
