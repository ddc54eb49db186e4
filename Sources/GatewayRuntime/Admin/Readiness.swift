/// What `/readyz` reports. Ready means devices can be served: the ingress
/// listeners are open and the outbox takes writes. The upstream connection
/// is shown but not required, since the outbox holds messages through an
/// outage; a gateway taken out of a load balancer for a broker outage would
/// refuse readings it could have stored.
public struct Readiness: Sendable, Equatable {
    public var listening: Bool
    public var outboxWritable: Bool
    public var upstreamConnected: Bool

    public init(listening: Bool, outboxWritable: Bool, upstreamConnected: Bool) {
        self.listening = listening
        self.outboxWritable = outboxWritable
        self.upstreamConnected = upstreamConnected
    }

    public var isReady: Bool { listening && outboxWritable }

    /// One `name: state` line per condition.
    var report: String {
        """
        listening: \(listening ? "yes" : "no")
        outbox: \(outboxWritable ? "writable" : "not writable")
        upstream: \(upstreamConnected ? "connected" : "disconnected")

        """
    }
}
