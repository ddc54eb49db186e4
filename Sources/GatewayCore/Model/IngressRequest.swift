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
    /// Remote address as `host:port`, for logs.
    public var peer: String
    public var receivedAt: Date

    public init(
        ingress: IngressProtocol,
        method: RequestMethod,
        path: [String],
        contentType: String?,
        payload: [UInt8],
        peer: String,
        receivedAt: Date = Date()
    ) {
        self.ingress = ingress
        self.method = method
        self.path = path
        self.contentType = contentType
        self.payload = payload
        self.peer = peer
        self.receivedAt = receivedAt
    }

    /// The path as `/a/b`, for envelopes and diagnostics.
    public var resource: String { "/" + path.joined(separator: "/") }
}
