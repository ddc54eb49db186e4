import Foundation
import GatewayCore

/// The request head and the `IngressRequest` made from it, from values
/// rather than from an MHD connection: the access handler and the
/// `http_request` fuzz target both go through here, so what the fuzzer
/// exercises is what the gateway runs.
extension RequestHead {
    /// `target` is the undecoded request target as MHD hands it over (no
    /// query), nil when its bytes are not UTF-8; `header` looks a request
    /// header up by name.
    package static func read(
        method: String, target: String?, header: (String) -> String?,
        peer: String, receivedAt: Date, transport: Transport, maxBody: Int
    ) -> RequestHead {
        var head = RequestHead(
            method: RoutedMethod(http: method), path: [],
            // A blank Content-Type declares nothing: same as none.
            contentType: header("Content-Type").flatMap { $0.isEmpty ? nil : $0 },
            peer: peer, receivedAt: receivedAt, transport: transport
        )
        // The URL arrives undecoded (see `keepEscapes`); the raw bytes must
        // be UTF-8 as they are, before any percent-decoding.
        guard let raw = target else {
            head.refusal = .badRequest(reason: "request target is not valid UTF-8")
            return head
        }
        switch PathDecoding.httpPath(raw) {
        case .success(let path):
            head.path = path
        case .failure(let rejection):
            head.refusal = rejection
            return head
        }
        switch BodyLimit.framing(
            transferEncoding: header("Transfer-Encoding"),
            contentLength: header("Content-Length"),
            maxBody: maxBody
        ) {
        case .length(let length): head.expectedLength = length
        case .chunked: break
        case .refuse(let rejection): head.refusal = rejection
        }
        return head
    }

    /// The request the pipeline gets once the body is complete; `query`
    /// looks a query argument up by name (MHD has split the query string).
    package func request(body: [UInt8], credential: PresentedCredential, query: (String) -> String?) -> IngressRequest {
        var request = IngressRequest(
            ingress: .http, method: method.method, path: path, contentType: contentType,
            payload: body, peer: peer, receivedAt: receivedAt,
            transport: transport, credential: credential
        )
        for name in IngressRequest.queryNames {
            if let value = query(name) {
                request.query[name] = value
            }
        }
        return request
    }
}
