import CCoAP
import GatewayCore
import Testing
@testable import CoAPIngress

@Suite("CoAP peer addresses as text")
struct CoAPAddressTests {
    @Test func ipv4AndIPv6() throws {
        let v4 = try #require(CoAPAddress.make(ListenAddress(host: "127.0.0.1", port: 5683)))
        #expect(withUnsafePointer(to: v4) { CoAPAddress.describe($0) } == "127.0.0.1:5683")
        let v6 = try #require(CoAPAddress.make(ListenAddress(host: "::1", port: 5684)))
        #expect(withUnsafePointer(to: v6) { CoAPAddress.describe($0) } == "[::1]:5684")
    }

    @Test func peerAddressesTellAddressPortAndFamilyApart() throws {
        func peer(_ host: String, _ port: UInt16) throws -> PeerKey {
            let address = try #require(CoAPAddress.make(ListenAddress(host: host, port: port)))
            return withUnsafePointer(to: address) { PeerKey($0) }
        }
        #expect(try peer("127.0.0.1", 5683) == PeerKey(ipv4: 0x7F00_0001, port: 5683))
        #expect(try peer("127.0.0.1", 5683) != peer("127.0.0.1", 5684))
        #expect(try peer("127.0.0.1", 5683) != peer("127.0.0.2", 5683))
        #expect(try peer("::1", 5683) == peer("::1", 5683))
        #expect(try peer("::1", 5683) != peer("::2", 5683))
        #expect(try peer("::1", 5683) != peer("2001:db8::1", 5683))
        // ::ffff:0:1 and 0.0.0.1 share their last bytes, not their family.
        #expect(try peer("::ffff:0:1", 1) != peer("0.0.0.1", 1))
    }
}
