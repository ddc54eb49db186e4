import Foundation
import GatewayCore
import Synchronization

/// An upstream double: the test decides when it connects, what a publish
/// returns, and when each message is acknowledged.
final class FakeUpstream: UpstreamClient {
    struct Published: Sendable, Equatable {
        var messageID: Int32
        var topic: String
        var payload: [UInt8]
        var qos: QoS
        /// When the forwarder handed it over (monotonic seconds).
        var at: Double = 0
    }

    struct State {
        var sink: (@Sendable (UpstreamEvent) -> Void)?
        var published: [Published] = []
        var nextID: Int32 = 1
        var connected = false
        var rejectTopics: Set<String> = []
        var stopped = false
        var reconnects = 0
    }

    private let state = Mutex(State())

    func start(events: @escaping @Sendable (UpstreamEvent) -> Void) {
        state.withLock { $0.sink = events }
    }

    func publish(topic: String, payload: [UInt8], qos: QoS, retain: Bool, expiresIn: UInt32?) -> PublishOutcome {
        state.withLock { state in
            if state.rejectTopics.contains(topic) { return .rejected(reason: "bad topic") }
            guard state.connected else { return .notConnected }
            let id = state.nextID
            state.nextID += 1
            state.published.append(Published(messageID: id, topic: topic, payload: payload, qos: qos, at: MonotonicClock.now()))
            return .inFlight(messageID: id)
        }
    }

    func stop() { state.withLock { $0.stopped = true } }

    /// Like libmosquitto: the connection drops and comes back; what was in
    /// flight stays (and would be resent under the same IDs).
    func reconnect() {
        let sink = state.withLock { $0.reconnects += 1; return $0.sink }
        sink?(.disconnected(reason: "reconnect asked"))
        sink?(.connected)
    }

    var reconnects: Int { state.withLock { $0.reconnects } }

    // Test controls.

    func connect() {
        let sink = state.withLock { $0.connected = true; return $0.sink }
        sink?(.connected)
    }

    func disconnect() {
        let sink = state.withLock { $0.connected = false; return $0.sink }
        sink?(.disconnected(reason: "test"))
    }

    func acknowledge(_ messageID: Int32) {
        let sink = state.withLock { $0.sink }
        sink?(.published(messageID: messageID))
    }

    /// Answers a publish with an MQTT 5 error reason code.
    func refuse(_ messageID: Int32, code: Int, transient: Bool) {
        let sink = state.withLock { $0.sink }
        sink?(.refused(messageID: messageID, reasonCode: code, reason: "test refusal", transient: transient))
    }

    func reject(topic: String) { state.withLock { _ = $0.rejectTopics.insert(topic) } }

    var published: [Published] { state.withLock { $0.published } }
    var stopped: Bool { state.withLock { $0.stopped } }

    /// Polls until `condition` holds or 20 seconds pass (a loaded machine).
    func waitUntil(_ condition: (FakeUpstream) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if condition(self) { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return condition(self)
    }
}
