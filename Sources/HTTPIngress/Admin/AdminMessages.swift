/// One request to the admin listener, as the routing sees it.
public struct AdminRequest: Sendable, Equatable {
    /// `GET` or `HEAD`: the server answers every other method 405 itself.
    public var method: String
    /// The path as received, without the query string and not
    /// percent-decoded (the admin paths are plain ASCII).
    public var path: String

    public init(method: String, path: String) {
        self.method = method
        self.path = path
    }
}

/// The answer to an admin request. For `HEAD`, libmicrohttpd sends the
/// headers (with the body's length) and leaves the body out.
public struct AdminResponse: Sendable, Equatable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    /// A short plain-text answer.
    public init(status: Int, text: String) {
        self.init(status: status, contentType: Self.plainText, body: Array(text.utf8))
    }

    public static let plainText = "text/plain; charset=utf-8"
}
