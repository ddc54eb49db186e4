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
}
