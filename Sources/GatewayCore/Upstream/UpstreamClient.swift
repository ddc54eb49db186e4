/// What the upstream connection tells the forwarder. Delivered on the client
/// library's own thread: receivers copy the event out and return at once.
public enum UpstreamEvent: Sendable, Equatable {
    /// The broker accepted the connection.
    case connected
    /// The connection ended; the client reconnects by itself.
    case disconnected(reason: String)
    /// A QoS 1 publish was acknowledged (PUBACK), or a QoS 0 publish was
    /// written to the socket.
    case published(messageID: Int32)
    /// MQTT 5: the broker answered a publish with an error reason code; the
    /// message was not accepted. `transient` codes (quota exceeded, server
    /// busy, unspecified) are worth retrying later; the others never will be.
    case refused(messageID: Int32, reasonCode: Int, reason: String, transient: Bool)
    /// An attempt to connect failed (the client tries again with backoff).
    case connectFailed(UpstreamConnectFailure)
}

/// The result of handing one message to the upstream client.
public enum PublishOutcome: Sendable, Equatable {
    /// The client owns it under this message ID; `.published` follows, after a
    /// reconnect if need be (QoS 1 is resent by the client itself).
    case inFlight(messageID: Int32)
    /// Not sent because there is no connection; try again after `.connected`.
    case notConnected
    /// It can never be sent as it is (bad topic, too large): do not retry.
    case rejected(reason: String)
}

/// An MQTT connection to the upstream broker, as the forwarder needs it.
/// Implementations keep the connection alive and reconnect with backoff.
public protocol UpstreamClient: AnyObject, Sendable {
    /// Starts connecting in the background; `events` receives every event
    /// until `stop` returns.
    func start(events: @escaping @Sendable (UpstreamEvent) -> Void)
    /// `expiresIn`: seconds the broker may keep it (MQTT 5 message expiry); nil: no expiry.
    func publish(topic: String, payload: [UInt8], qos: QoS, retain: Bool, expiresIn: UInt32?) -> PublishOutcome
    /// Drops the connection and makes a new one (with the usual backoff):
    /// for a broker that stopped answering on a live connection. Messages in
    /// flight are resent after the reconnect.
    func reconnect()
    /// Disconnects cleanly and stops the background thread.
    func stop()
}
