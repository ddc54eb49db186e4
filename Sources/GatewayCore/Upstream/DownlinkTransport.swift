/// What an upstream connection tells the downlink side (shadow answers,
/// later commands). Delivered on the client library's own thread: receivers
/// copy the event out and return at once.
public enum DownlinkEvent: Sendable, Equatable {
    /// The broker accepted the connection: subscriptions are (re)made now.
    case connected
    case disconnected
    /// A message on a topic the connection subscribed to; `retained`: the
    /// broker's stored copy, sent at each subscribe.
    case message(topic: String, payload: [UInt8], retained: Bool)
    /// The SUBACK of a `subscribe`: per filter, the granted QoS, or 128 and
    /// above for a refusal (AWS refuses what the policy does not allow).
    case subscribed(messageID: Int32, granted: [Int32])
}

/// The result of asking to subscribe.
public enum SubscribeOutcome: Sendable, Equatable {
    /// Sent; `.subscribed` with this message ID follows.
    case sent(messageID: Int32)
    case notConnected
    /// The filter can never be subscribed to (malformed).
    case rejected(reason: String)
}

/// The subscribing half of an upstream connection. Its publishes go
/// through `UpstreamClient.publish` on the same connection.
public protocol DownlinkTransport: UpstreamClient {
    /// Set before `start`; receives every downlink event until `stop` returns.
    func listen(_ handler: @escaping @Sendable (DownlinkEvent) -> Void)
    func subscribe(_ filter: String, qos: QoS) -> SubscribeOutcome
    /// False when it could not be sent (no connection): a persistent
    /// session would keep the subscription, so it must be sent again later.
    func unsubscribe(_ filter: String) -> Bool
}
