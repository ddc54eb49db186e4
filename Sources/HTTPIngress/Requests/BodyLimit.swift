import GatewayCore

/// How the body size limit is enforced, decided from the request headers
/// (first call of the access handler) and then while the body streams in.
enum BodyLimit {
    /// After a chunked body passes the limit, this much more is read and
    /// dropped so the client still gets its 413 (MHD cannot queue a response
    /// while the body is streaming in, only once it is complete). A client
    /// that keeps sending past this is disconnected instead.
    static let drainAllowance = 1 << 20

    /// What the headers say about the body.
    enum Framing: Equatable {
        /// `Content-Length`, already checked against the limit.
        case length(Int)
        /// `Transfer-Encoding: chunked`; the size is known only at the end.
        case chunked
        /// Answer at once, before any of the body is read.
        case refuse(IngressRejection)
    }

    /// MHD has already rejected a malformed `Content-Length` (400) and one too
    /// large for 64 bits (413) before the access handler runs, and it ignores
    /// `Content-Length` when `Transfer-Encoding` is present.
    static func framing(transferEncoding: String?, contentLength: String?, maxBody: Int) -> Framing {
        if let transferEncoding {
            // MHD decodes only plain `chunked`; anything else (gzip, a list)
            // would leave it reading until the client closes.
            guard transferEncoding.trimmingSpaces().lowercased() == "chunked" else {
                return .refuse(.badRequest(reason: "unsupported Transfer-Encoding; use chunked or Content-Length"))
            }
            return .chunked
        }
        guard let contentLength else { return .length(0) }
        guard let length = UInt64(contentLength.trimmingSpaces()) else {
            return .refuse(.badRequest(reason: "invalid Content-Length"))
        }
        guard length <= UInt64(max(0, maxBody)) else {
            return .refuse(tooLarge(maxBody))
        }
        return .length(Int(length))
    }

    static func tooLarge(_ maxBody: Int) -> IngressRejection {
        .payloadTooLarge(limit: maxBody, reason: "request body is larger than \(maxBody) bytes")
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
