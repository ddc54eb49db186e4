import Foundation

/// A request as an ingress adapter hands it to the pipeline, before routing.
///
/// Path segments are already decoded (CoAP Uri-Path options, or HTTP path
/// segments percent-decoded one by one) and known to be valid UTF-8.
public struct IngressRequest: Sendable {
    public var ingress: IngressProtocol
    public var method: RequestMethod
    /// Decoded path segments; `/a/b` is `["a", "b"]`.
    public var path: [String]
    /// Media type as the client declared it (HTTP Content-Type, or the CoAP
    /// Content-Format translated to a media type), nil when absent.
    public var contentType: String?
    public var payload: [UInt8]
    /// Remote address as `host:port` (`[v6]:port`), for logs and lockouts.
    public var peer: String
    public var receivedAt: Date
    /// Plain or secure (DTLS, TLS): only a secure transport carries credentials.
    public var transport: Transport
    /// What the request brought to prove who sent it.
    public var credential: PresentedCredential
    /// Query parameters the gateway understands (`queryNames`), from the
    /// HTTP query string or CoAP Uri-Query options.
    public var query: [String: String] = [:]
    /// CoAP Observe (RFC 7641): 0 registers, 1 deregisters; nil: a plain request.
    public var observe: UInt32?

    /// `wait`: seconds an HTTP GET of a shadow waits for its next delta (long-poll).
    public static let queryNames = ["wait"]

    public init(
        ingress: IngressProtocol,
        method: RequestMethod,
        path: [String],
        contentType: String?,
        payload: [UInt8],
        peer: String,
        receivedAt: Date = Date(),
        transport: Transport = .plain,
        credential: PresentedCredential = .none
    ) {
        self.ingress = ingress
        self.method = method
        self.path = path
        self.contentType = contentType
        self.payload = payload
        self.peer = peer
        self.receivedAt = receivedAt
        self.transport = transport
        self.credential = credential
    }

    /// The path as `/a/b`, for envelopes and diagnostics.
    public var resource: String { "/" + path.joined(separator: "/") }

    /// The peer's address without its port: what a lockout is keyed by
    /// (a device retrying from new source ports is still one source).
    public var source: String { PeerAddress.host(of: peer) }
}

/// Peer strings as the adapters write them: `1.2.3.4:5683`, `[::1]:5683`.
public enum PeerAddress {
    public static func host(of peer: String) -> String {
        if peer.hasPrefix("["), let close = peer.firstIndex(of: "]") {
            return String(peer[peer.index(after: peer.startIndex)..<close])
        }
        if let colon = peer.lastIndex(of: ":"), peer.firstIndex(of: ":") == colon {
            return String(peer[..<colon])
        }
        return peer
    }
}
