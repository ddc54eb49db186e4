import GatewayCore

/// The method a request is routed with.
///
/// HTTP methods without a `RequestMethod` (HEAD, OPTIONS, TRACE, ...) are
/// still routed, so the client learns the truth: 404 when no mapping has the
/// path, 405 with `Allow` when one does. They are routed as `.fetch`, a
/// CoAP-only method that no mapping can list (the config accepts only
/// `RequestMethod.publishable`), so the pipeline always refuses them; the
/// refusal's reason is then rewritten to name the client's own method.
package struct RoutedMethod: Equatable, Sendable {
    /// What the pipeline sees.
    package var method: RequestMethod
    /// The client's method when it has no `RequestMethod` of its own.
    var unmapped: String?

    /// Never matches a mapping; see the type's comment.
    static let standIn = RequestMethod.fetch

    /// HTTP methods are case-sensitive tokens, so only the exact names map.
    init(http name: String) {
        switch name {
        case "GET": method = .get
        case "POST": method = .post
        case "PUT": method = .put
        case "PATCH": method = .patch
        case "DELETE": method = .delete
        default:
            method = Self.standIn
            unmapped = Self.printable(name)
        }
    }

    /// The name for logs and diagnostics.
    var name: String { unmapped ?? method.rawValue }

    /// Makes a refusal of the stand-in method speak of the client's method.
    package func adjusted(_ rejection: IngressRejection) -> IngressRejection {
        guard let unmapped, case .methodNotAllowed(let allowed, _) = rejection else { return rejection }
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        return .methodNotAllowed(allowed: allowed, reason: "method \(unmapped) not allowed; allowed: \(list)")
    }

    /// A method token comes from the client: keep it short and printable
    /// before it reaches a response body or a log line.
    private static func printable(_ text: String) -> String {
        let clean = String(String.UnicodeScalarView(text.unicodeScalars.prefix(32).map {
            $0.isASCII && $0.value >= 0x21 && $0.value < 0x7F ? $0 : "?"
        }))
        return clean.isEmpty ? "?" : clean
    }
}
