/// The protocol a message arrived over.
public enum IngressProtocol: String, Sendable, Hashable, CaseIterable, Codable {
    case coap
    case http
}

/// Request methods a mapping can accept. CoAP and HTTP share these names.
public enum RequestMethod: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    case get = "GET"
    case post = "POST"
    case put = "PUT"
    case patch = "PATCH"
    case delete = "DELETE"
    case fetch = "FETCH"
    case iPatch = "IPATCH"

    /// Methods a mapping may list: the ones that carry a reading.
    public static let publishable: [RequestMethod] = [.post, .put, .patch]

    public static func < (lhs: RequestMethod, rhs: RequestMethod) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
