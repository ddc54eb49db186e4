import Foundation
import GatewayCore
import GatewayStore
import Logging
import Synchronization
import Testing
@testable import GatewayRuntime

/// A connection double for the downlink side: the test connects it, sees
/// what was subscribed and published, and answers as the broker would.
final class FakeDownlink: DownlinkTransport {
    struct State {
        var handler: (@Sendable (DownlinkEvent) -> Void)?
        var connected = false
        var subscribed: [(messageID: Int32, filter: String)] = []
        var unsubscribed: [String] = []
        var published: [(topic: String, payload: [UInt8])] = []
        var nextID: Int32 = 1
    }

    let state = Mutex(State())

    func listen(_ handler: @escaping @Sendable (DownlinkEvent) -> Void) { state.withLock { $0.handler = handler } }
    func start(events: @escaping @Sendable (UpstreamEvent) -> Void) {}
    func reconnect() {}
    func stop() {}

    func subscribe(_ filter: String, qos: QoS) -> SubscribeOutcome {
        state.withLock { state in
            guard state.connected else { return .notConnected }
            let id = state.nextID
            state.nextID += 1
            state.subscribed.append((id, filter))
            return .sent(messageID: id)
        }
    }

    func unsubscribe(_ filter: String) -> Bool {
        state.withLock { state in
            guard state.connected else { return false }
            state.unsubscribed.append(filter)
            return true
        }
    }

    func publish(topic: String, payload: [UInt8], qos: QoS, retain: Bool, expiresIn: UInt32?) -> PublishOutcome {
        state.withLock { state in
            guard state.connected else { return .notConnected }
            state.published.append((topic, payload))
            state.nextID += 1
            return .inFlight(messageID: state.nextID)
        }
    }

    func send(_ event: DownlinkEvent) {
        if case .connected = event { state.withLock { $0.connected = true } }
        state.withLock { $0.handler }?(event)
    }

    var subscriptions: [(messageID: Int32, filter: String)] { state.withLock { $0.subscribed } }
    var publications: [(topic: String, payload: [UInt8])] { state.withLock { $0.published } }

    /// The clientToken of the request published on `topic`.
    func token(on topic: String) -> String? {
        publications.last { $0.topic == topic }
            .flatMap { (try? JSONSerialization.jsonObject(with: Data($0.payload))) as? [String: Any] }?["clientToken"] as? String
    }
}

/// Collects the completions of shadow requests.
final class Answers: Sendable {
    let results = Guarded<[Result<Acceptance, IngressRejection>]>([])
    var completion: Downlink.Completion { { [results] result in results.update { $0.append(result) } } }
    var all: [Result<Acceptance, IngressRejection>] { results.withLock { $0 } }
}

/// Generous: in the whole suite, long synchronous tests can hold both of
/// the 2-core box's cooperative threads for tens of seconds, and this
/// waits on the same pool.
func shadowWait(_ what: String, timeout: Double = 120, _ condition: () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline {
            Issue.record("timed out waiting for \(what)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

@Suite("Downlink: shadow requests")
struct DownlinkTests {
    /// Long enough that a loaded test machine never times a request out by accident.
    /// A shadow timeout no starved test step can reach (see shadowWait);
    /// `impatient` is the one that tests timing out.
    static let binding = ShadowBinding(thing: try! TopicTemplate.parse("{d}").get(), timeout: 120)
    var binding: ShadowBinding { Self.binding }
    static let impatient = ShadowBinding(thing: try! TopicTemplate.parse("{d}").get(), timeout: 0.2)

    func exchange(_ transport: FakeDownlink, cap: Int = 40) -> Downlink {
        let exchange = Downlink(transports: [transport], subscriptionCap: cap, gatewayName: "gw", logger: Logger(label: "test"))
        exchange.start()
        return exchange
    }

    @Test func aGetSubscribesFirstThenPublishesAndAnswersFromItsToken() async throws {
        let transport = FakeDownlink()
        let downlink = exchange(transport)
        defer { downlink.stop() }
        let answers = Answers()
        let address = ShadowAddress(thing: "t1")
        #expect(throws: IngressRejection.self) {
            try downlink.request(.get, address: address, body: [], binding: binding, completion: answers.completion)
        }
        transport.send(.connected)
        try await shadowWait("connected") { downlink.isConnected(address) }
        try downlink.request(.get, address: address, body: [], binding: binding, completion: answers.completion)
        try await shadowWait("the subscription") { transport.subscriptions.count == 1 }
        #expect(transport.subscriptions[0].filter == "$aws/things/t1/shadow/get/+")
        #expect(transport.publications.isEmpty, "nothing is published before the SUBACK")
        transport.send(.subscribed(messageID: transport.subscriptions[0].messageID, granted: [1]))
        try await shadowWait("the get") { transport.publications.count == 1 }
        let token = try #require(transport.token(on: "$aws/things/t1/shadow/get"))

        // Someone else's answer, and ours on the wrong topic, change nothing.
        transport.send(.message(topic: "$aws/things/t1/shadow/get/accepted", payload: Array(#"{"version":1,"clientToken":"other"}"#.utf8), retained: false))
        transport.send(.message(topic: "$aws/things/t2/shadow/get/accepted", payload: Array(#"{"version":1,"clientToken":"\#(token)"}"#.utf8), retained: false))
        transport.send(.message(topic: "$aws/things/t1/shadow/get/accepted", payload: Array(#"{"state":{},"version":3,"clientToken":"\#(token)"}"#.utf8), retained: false))
        try await shadowWait("the answer") { answers.all.count == 1 }
        guard case .success(.reply(let reply)) = answers.all[0] else {
            Issue.record("expected a reply, got \(answers.all)")
            return
        }
        #expect(reply.kind == .content)
        #expect(String(decoding: reply.body, as: UTF8.self).contains(#""version":3"#))

        // The second get needs no new subscription.
        try downlink.request(.get, address: address, body: [], binding: Self.impatient, completion: answers.completion)
        try await shadowWait("the second get") { transport.publications.count == 2 }
        #expect(transport.subscriptions.count == 1)
        // ... and times out without an answer: 5.04.
        try await shadowWait("the timeout") { answers.all.count == 2 }
        #expect(answers.all[1].outcome == .timeout)
    }

    @Test func aRefusedSubscriptionFailsItsRequestsAsBadGateway() async throws {
        let transport = FakeDownlink()
        let downlink = exchange(transport)
        defer { downlink.stop() }
        transport.send(.connected)
        let answers = Answers()
        let address = ShadowAddress(thing: "t1", name: "cfg")
        try await shadowWait("connected") { downlink.isConnected(address) }
        try downlink.request(.update, address: address, body: Array(#"{"a":1}"#.utf8), binding: binding, completion: answers.completion)
        try await shadowWait("the subscription") { transport.subscriptions.count == 1 }
        #expect(transport.subscriptions[0].filter == "$aws/things/t1/shadow/name/cfg/update/+")
        transport.send(.subscribed(messageID: transport.subscriptions[0].messageID, granted: [0x80]))
        try await shadowWait("the refusal") { answers.all.count == 1 }
        #expect(answers.all[0].outcome == .badGateway)
        #expect(transport.publications.isEmpty)
    }

    @Test func theEleventhRequestForOneThingIsRefusedAsAWSWouldThrottleIt() async throws {
        let transport = FakeDownlink()
        let downlink = exchange(transport)
        defer { downlink.stop() }
        transport.send(.connected)
        let answers = Answers()
        let address = ShadowAddress(thing: "busy")
        try await shadowWait("connected") { downlink.isConnected(address) }
        for _ in 0..<11 {
            try downlink.request(.get, address: address, body: [], binding: binding, completion: answers.completion)
        }
        try await shadowWait("the refusal") { answers.all.count == 1 }
        #expect(answers.all[0].outcome == .tooManyRequests)
        // Another thing is not held back by it.
        try downlink.request(.get, address: ShadowAddress(thing: "calm"), body: [], binding: binding, completion: answers.completion)
        try await shadowWait("the second subscription") { transport.subscriptions.count == 2 }
        #expect(answers.all.count == 1)
    }

    @Test func subscriptionsOfTheLastRunAreKnownAfterARestartAndThoseThatNoLongerFitAreDropped() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-downlink-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try CommandStore(path: directory.appendingPathComponent("commands.sqlite").path)
        let answers = Answers()

        let before = FakeDownlink()
        let first = Downlink(transports: [before], subscriptionCap: 40, gatewayName: "gw", store: store, logger: Logger(label: "test"))
        first.start()
        before.send(.connected)
        try await shadowWait("connected") { first.isConnected(ShadowAddress(thing: "a")) }
        for (index, thing) in ["a", "b"].enumerated() {
            try first.request(.get, address: ShadowAddress(thing: thing), body: [], binding: Self.impatient, completion: answers.completion)
            try await shadowWait("subscription \(index + 1)") { before.subscriptions.count == index + 1 }
        }
        first.stop()

        // The next run, with room for one: it subscribes to one again and drops the other.
        let after = FakeDownlink()
        let second = Downlink(transports: [after], subscriptionCap: 1, gatewayName: "gw", store: store, logger: Logger(label: "test"))
        second.start()
        defer { second.stop() }
        after.send(.connected)
        try await shadowWait("the restored subscription") { after.subscriptions.count == 1 }
        try await shadowWait("the dropped one") { after.state.withLock { $0.unsubscribed.count } == 1 }
        let kept = after.subscriptions[0].filter
        let dropped = after.state.withLock { $0.unsubscribed[0] }
        #expect(Set([kept, dropped]) == ["$aws/things/a/shadow/get/+", "$aws/things/b/shadow/get/+"])
        #expect(try store.followedFilters().map(\.filter) == [kept])
    }

    @Test func idleSubscriptionsMakeRoomLeastRecentlyUsedFirstAndAreRemadeAfterAReconnect() async throws {
        let transport = FakeDownlink()
        let downlink = exchange(transport, cap: 2)
        defer { downlink.stop() }
        transport.send(.connected)
        let answers = Answers()
        try await shadowWait("connected") { downlink.isConnected(ShadowAddress(thing: "a")) }
        for (index, thing) in ["a", "b", "c"].enumerated() {
            try downlink.request(.get, address: ShadowAddress(thing: thing), body: [], binding: binding, completion: answers.completion)
            try await shadowWait("subscription \(index + 1)") { transport.subscriptions.count == index + 1 }
            transport.send(.subscribed(messageID: transport.subscriptions[index].messageID, granted: [1]))
            try await shadowWait("get \(index + 1)") { transport.publications.count == index + 1 }
            let token = try #require(transport.token(on: "$aws/things/\(thing)/shadow/get"))
            transport.send(.message(topic: "$aws/things/\(thing)/shadow/get/accepted", payload: Array(#"{"clientToken":"\#(token)"}"#.utf8), retained: false))
            try await shadowWait("answer \(index + 1)") { answers.all.count == index + 1 }
        }
        #expect(transport.state.withLock { $0.unsubscribed } == ["$aws/things/a/shadow/get/+"])

        transport.send(.disconnected)
        transport.send(.connected)
        try await shadowWait("the resubscriptions") { transport.subscriptions.count == 5 }
        #expect(Set(transport.subscriptions.suffix(2).map(\.filter)) == ["$aws/things/b/shadow/get/+", "$aws/things/c/shadow/get/+"])
    }
}

extension Result where Success == Acceptance, Failure == IngressRejection {
    var outcome: RequestOutcome {
        switch self {
        case .success(let acceptance): return RequestOutcome(acceptance)
        case .failure(let rejection): return rejection.outcome
        }
    }
}
