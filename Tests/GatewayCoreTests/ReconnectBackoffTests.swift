import Testing
@testable import GatewayCore

@Suite("Reconnect backoff")
struct ReconnectBackoffTests {
    @Test func ceilingDoublesUpToTheMaximum() {
        var backoff = ReconnectBackoff()
        var ceilings: [Double] = []
        for _ in 0..<10 {
            ceilings.append(backoff.ceiling)
            _ = backoff.nextDelay { $0 }
        }
        #expect(ceilings == [1, 2, 4, 8, 16, 32, 64, 120, 120, 120])
    }

    @Test func jitterDrawsFromZeroToTheCeilingButNeverBelowOneSecond() {
        var backoff = ReconnectBackoff()
        for _ in 0..<4 { _ = backoff.nextDelay { $0 } }
        var bound = 0.0
        #expect(backoff.nextDelay { bound = $0; return 0.2 } == 1)
        #expect(bound == 16)
        #expect(backoff.nextDelay { $0 / 2 } == 16)
    }

    @Test func aConnectionThatHeldForThirtySecondsResetsTheBackoff() {
        var backoff = ReconnectBackoff()
        for _ in 0..<5 { _ = backoff.nextDelay { $0 } }
        backoff.didConnect(at: 100)
        backoff.didDisconnect(at: 110)
        #expect(backoff.failures == 5)  // a short-lived connection does not count
        backoff.didConnect(at: 200)
        backoff.didDisconnect(at: 231)
        #expect(backoff.failures == 0)
        #expect(backoff.ceiling == 1)
    }
}
