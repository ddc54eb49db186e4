import Testing
@testable import GatewayCore

@Suite("LogThrottle")
struct LogThrottleTests {
    @Test("the first occurrence logs; repeats within the interval are counted; the next line after it carries the count")
    func stormBecomesOneLinePerInterval() {
        let throttle = LogThrottle(interval: 60)
        #expect(throttle.check("disk full", now: 0) == .log(suppressed: 0))
        for second in 1...100 { #expect(throttle.check("disk full", now: Double(second) * 0.5) == .hold) }
        #expect(throttle.pending("disk full") == 100)
        #expect(throttle.check("disk full", now: 60) == .log(suppressed: 100))
        #expect(throttle.check("disk full", now: 61) == .hold)
    }

    @Test("keys are independent, and reset ends a storm with what was held back")
    func keysAndReset() {
        let throttle = LogThrottle(interval: 60)
        #expect(throttle.check("a", now: 0) == .log(suppressed: 0))
        #expect(throttle.check("b", now: 1) == .log(suppressed: 0))
        #expect(throttle.check("a", now: 2) == .hold)
        #expect(throttle.reset("a") == 1)
        #expect(throttle.check("a", now: 3) == .log(suppressed: 0))
    }
}
