/// Why an attempt to connect upstream failed, in a few classes: the
/// `reason` label of `iotgw_upstream_connect_failures_total`, so the set
/// must stay small and fixed (the full reason is in the log line).
public enum UpstreamConnectFailure: String, Sendable, CaseIterable, Equatable {
    /// The broker answered CONNACK with a refusal: certificate, policy, client ID.
    case refused
    /// No TCP connection, TLS handshake or CONNACK within the time allowed.
    case timeout
    /// The TLS handshake failed (certificate not trusted, wrong ALPN, …).
    case tls
    /// The broker's name did not resolve.
    case dns
    /// The TCP connection was refused, reset or unreachable.
    case network
    /// The broker broke the protocol, or anything else.
    case other
}
