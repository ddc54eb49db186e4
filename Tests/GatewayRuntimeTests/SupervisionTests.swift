import Foundation
@testable import GatewayCore
import Testing
@testable import GatewayRuntime
#if canImport(Glibc)
import Glibc
#endif

struct StallDetectorTests {
    @Test func aThreadThatBeatsOrIdlesIsHealthy() {
        let busy = Heartbeat(name: "writer"), sleeper = Heartbeat(name: "forwarder")
        var detector = StallDetector(after: 5)
        #expect(detector.check([busy, sleeper], now: 0) == .healthy)
        for second in 1...20 {
            busy.beat()
            sleeper.idle { #expect(detector.check([busy, sleeper], now: Double(second)) == .healthy) }
        }
    }

    @Test func aBusyThreadWithoutBeatsIsStuckOnceThenRecovers() {
        let writer = Heartbeat(name: "outbox-writer"), other = Heartbeat(name: "coap")
        var detector = StallDetector(after: 5)
        #expect(detector.check([writer, other], now: 0) == .healthy)
        other.beat()
        #expect(detector.check([writer, other], now: 4.9) == .healthy)
        other.beat()
        #expect(detector.check([writer, other], now: 5) == .newlyStuck(["outbox-writer"], seconds: 5))
        other.beat()
        #expect(detector.check([writer, other], now: 6) == .stillStuck)
        writer.beat()
        #expect(detector.check([writer, other], now: 7) == .recovered)
        #expect(detector.check([writer, other], now: 8) == .healthy)
    }

    @Test func aThreadThatGoesAwayIsForgotten() {
        let gone = Heartbeat(name: "forwarder")
        var detector = StallDetector(after: 1)
        _ = detector.check([gone], now: 0)
        #expect(detector.check([], now: 10) == .healthy)
    }
}

struct SystemdNotifierTests {
    @Test func noSocketNoNotifier() {
        #expect(SystemdNotifier(environment: [:]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/path"]) == nil)
    }

    @Test func theWatchdogIntervalIsOnlyForThisProcess() {
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "30000000"]) == 30)
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())"]) == 30)
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid() + 1)"]) == nil)
        #expect(SystemdWatchdog.interval(environment: ["WATCHDOG_USEC": "0"]) == nil)
    }

    @Test func sendsOneDatagramOfLines() throws {
        let path = NSTemporaryDirectory() + "iotgw-notify-\(UUID().uuidString.prefix(8)).sock"
        let receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(receiver); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": path]))
        #expect(notifier.send(["READY=1", "STATUS=queued 0 (0 B); upstream connected 1/1"]))
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { recv(receiver, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        #expect(String(decoding: buffer.prefix(max(0, count)), as: UTF8.self) == "READY=1\nSTATUS=queued 0 (0 B); upstream connected 1/1")
    }
}

struct MappingChangeTests {
    static func rule(_ name: String, _ resource: String, _ topic: String, line: Int) -> MappingRule {
        MappingRule(
            name: name,
            resource: try! ResourcePattern.parse(resource).get(),
            topic: try! TopicTemplate.parse(topic).get(),
            auth: .anonymous,
            location: SourceLocation(file: "mappings.yaml", line: line, column: 5)
        )
    }

    @Test func namesWhatWasAddedRemovedAndChangedNotWhatMerelyMoved() {
        let before = [
            Self.rule("a", "/a/{d}", "t/a/{d}", line: 2),
            Self.rule("b", "/b/{d}", "t/b/{d}", line: 5),
            Self.rule("c", "/c/{d}", "t/c/{d}", line: 8),
        ]
        let after = [
            Self.rule("d", "/d/{d}", "t/d/{d}", line: 2),
            Self.rule("a", "/a/{d}", "t/a/{d}", line: 5),
            Self.rule("c", "/c/{d}", "t/c2/{d}", line: 8),
        ]
        let change = MappingChange(from: before, to: after)
        #expect(change.added == ["d"])
        #expect(change.removed == ["b"])
        #expect(change.changed == ["c"])
    }

    @Test func theSameRuleReadAgainIsNoChange() {
        var first = Self.rule("a", "/a/{d}", "t/a/{d}", line: 2)
        var again = Self.rule("a", "/a/{d}", "t/a/{d}", line: 9)
        first.protocols = [.coap, .http]
        again.protocols = [.http, .coap]
        #expect(MappingChange(from: [first], to: [again]) == MappingChange(from: [], to: []))
    }
}
