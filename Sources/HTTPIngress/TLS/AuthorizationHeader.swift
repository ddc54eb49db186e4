import Foundation
import GatewayCore

/// What an `Authorization` header presents, on a TLS connection. Only
/// extracts: whether the token is valid is the `Authenticator`'s call.
/// The reasons go back to the device; none of them repeats what it sent.
enum AuthorizationHeader {
    static func credential(_ value: String) -> PresentedCredential {
        let text = value.trimmingCharacters(in: .whitespaces)
        let scheme = text.prefix { $0 != " " && $0 != "\t" }
        let rest = text.dropFirst(scheme.count).trimmingCharacters(in: .whitespaces)
        // Scheme names are case-insensitive (RFC 9110, 11.1).
        switch scheme.lowercased() {
        case "bearer":
            guard !rest.isEmpty else { return .unusable(reason: "Bearer credentials without a token") }
            return .bearer(token: rest)
        case "basic":
            return basic(rest)
        default:
            return .unusable(reason: "unsupported Authorization scheme; use Bearer or Basic")
        }
    }

    /// RFC 7617: base64 of `id:token`; the id cannot hold a colon, the token may.
    private static func basic(_ encoded: String) -> PresentedCredential {
        guard !encoded.isEmpty, let data = Data(base64Encoded: encoded),
              let decoded = String(data: data, encoding: .utf8)
        else {
            return .unusable(reason: "malformed Basic credentials; expected base64 of id:token")
        }
        guard let colon = decoded.firstIndex(of: ":") else {
            return .unusable(reason: "Basic credentials without a colon; expected id:token")
        }
        return .basic(id: String(decoded[..<colon]), token: String(decoded[decoded.index(after: colon)...]))
    }
}
