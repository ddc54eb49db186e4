import Foundation

/// Everything the gateway reports for metrics. The parts call these at the
/// moment something happens; `GatewayRuntime` turns them into Prometheus
/// metrics. Implementations must be cheap and must not block: they are called
/// on the CoAP, HTTP, writer, forwarder and MQTT threads.
public protocol GatewayObserver: Sendable {
    /// A request got its final answer.
    func requestAnswered(protocol: IngressProtocol, outcome: RequestOutcome)
    /// A message entered the outbox (committed for QoS 1, queued for QoS 0).
    func messageAccepted(qos: QoS)
    /// Messages left the outbox because the broker took them (PUBACK for QoS
    /// 1, written for QoS 0); `latencies` are seconds from ingress to that moment.
    func messagesDelivered(qos: QoS, latencies: [Double])
    /// QoS 1 messages sent again after a reconnect.
    func messagesResent(count: Int)
    /// Messages dropped because their mapping's `expiry` passed.
    func messagesExpired(qos: QoS, count: Int)
    /// Queued QoS 0 messages dropped to make room (capacity).
    func messagesShed(count: Int)
    /// Messages dropped for another reason: `offline` (QoS 0 while
    /// disconnected), `rejected` (the MQTT library refused it as invalid).
    func messagesDropped(reason: String, qos: QoS, count: Int)
    /// A new message was refused: `full` (capacity) or `stopping`.
    func messageRefused(reason: String)
    /// MQTT 5: the broker answered a publish with this error reason code.
    func brokerRefused(reasonCode: Int)
    /// Upstream connection `connection` (0-based, one per `upstream.connections`) went up or down.
    func upstreamConnection(_ connection: Int, connected: Bool)
    /// A group commit finished: how many messages and deletions it held, and
    /// how long the transaction took.
    func commitFinished(messages: Int, deletions: Int, seconds: Double)
    /// The device registry now in use holds `devices` entries, `disabled`
    /// of them disabled; `reload`: it replaced another (not the one loaded at start).
    func registryLoaded(devices: Int, disabled: Int, reload: Bool)
    /// A changed registry had problems and was not used.
    func registryReloadFailed()
    /// `messageAccepted(qos:)`, with the name of the mapping that produced
    /// the message (what the outbox calls).
    func messageAccepted(qos: QoS, mapping: String)
    /// Connection `connection` now has `count` messages handed to its
    /// client and not yet acknowledged. Reported when it changes, at most
    /// once per turn of the forwarder's loop.
    func upstreamInFlight(_ connection: Int, count: Int)
    /// An attempt of connection `connection` to connect failed.
    func upstreamConnectFailed(_ connection: Int, reason: UpstreamConnectFailure)
}

extension GatewayObserver {
    // Most observers (the tests') care only about messages.
    public func registryLoaded(devices: Int, disabled: Int, reload: Bool) {}
    public func registryReloadFailed() {}
    public func messageAccepted(qos: QoS, mapping: String) { messageAccepted(qos: qos) }
    public func upstreamInFlight(_ connection: Int, count: Int) {}
    public func upstreamConnectFailed(_ connection: Int, reason: UpstreamConnectFailure) {}
}

/// Reports nothing: the default where no metrics are wanted (tests, tools).
public struct NoObserver: GatewayObserver {
    public init() {}
    public func requestAnswered(protocol: IngressProtocol, outcome: RequestOutcome) {}
    public func messageAccepted(qos: QoS) {}
    public func messagesDelivered(qos: QoS, latencies: [Double]) {}
    public func messagesResent(count: Int) {}
    public func messagesExpired(qos: QoS, count: Int) {}
    public func messagesShed(count: Int) {}
    public func messagesDropped(reason: String, qos: QoS, count: Int) {}
    public func messageRefused(reason: String) {}
    public func brokerRefused(reasonCode: Int) {}
    public func upstreamConnection(_ connection: Int, connected: Bool) {}
    public func commitFinished(messages: Int, deletions: Int, seconds: Double) {}
}

/// The outbox's depth at one moment, by QoS, for gauges and `queue stats`.
public struct OutboxSnapshot: Sendable, Equatable {
    public struct Level: Sendable, Equatable {
        public var messages: Int
        public var bytes: Int
        /// Age of the oldest queued message in seconds; 0 when empty.
        public var oldestAge: Double

        public init(messages: Int, bytes: Int, oldestAge: Double) {
            self.messages = messages
            self.bytes = bytes
            self.oldestAge = oldestAge
        }
    }

    public var qos0: Level
    public var qos1: Level

    public init(qos0: Level, qos1: Level) {
        self.qos0 = qos0
        self.qos1 = qos1
    }
}
