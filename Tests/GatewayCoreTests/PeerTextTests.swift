import Glibc
import Testing
@testable import GatewayCore

@Suite("Peer addresses as text")
struct PeerTextTests {
    /// The hand-written IPv4 form must read exactly as inet_ntop's.
    @Test(arguments: [
        ("127.0.0.1", UInt16(5683)), ("0.0.0.0", 0), ("255.255.255.255", 65535), ("10.200.3.40", 9), ("192.168.100.1", 10000),
    ])
    func ipv4MatchesInetNtop(_ host: String, _ port: UInt16) throws {
        var address = in_addr()
        #expect(inet_pton(AF_INET, host, &address) == 1)
        #expect(PeerText.ipv4(UInt32(bigEndian: address.s_addr), port: port) == "\(host):\(port)")
    }
}
