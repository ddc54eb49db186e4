import Foundation
import GatewayCore

/// What an `Authorization` header presents, on a TLS connection. Only
/// extracts: whether the token is valid is the `Authenticator`'s call.
/// The reasons go back to the device; none of them repeats what it sent.
///
/// Works on the header's bytes: it runs for every HTTPS request, and
/// Foundation's trimming (through NSString) cost a fifth of a worker's time.
package enum AuthorizationHeader {
    static func credential(_ value: String) -> PresentedCredential {
        var value = value
        return value.withUTF8 { credential(bytes: $0) }
    }

    /// The header as MHD hands it over: a NUL-terminated C string.
    static func credential(cString: UnsafePointer<CChar>) -> PresentedCredential {
        cString.withMemoryRebound(to: UInt8.self, capacity: 1) { start in
            credential(bytes: UnsafeBufferPointer(start: start, count: strlen(cString)))
        }
    }

    package static func credential(bytes: UnsafeBufferPointer<UInt8>) -> PresentedCredential {
        let text = trimmed(bytes[...])
        let schemeEnd = text.firstIndex(where: isBlank) ?? text.endIndex
        let scheme = text[..<schemeEnd]
        let rest = trimmed(text[schemeEnd...])
        // Scheme names are case-insensitive (RFC 9110, 11.1).
        if equalsIgnoringCase(scheme, "bearer") {
            guard !rest.isEmpty else { return .unusable(reason: "Bearer credentials without a token") }
            guard let token = String(validating: rest, as: UTF8.self) else {
                return .unusable(reason: "Authorization header is not valid UTF-8")
            }
            return .bearer(token: token)
        }
        if equalsIgnoringCase(scheme, "basic") {
            return basic(rest)
        }
        return .unusable(reason: "unsupported Authorization scheme; use Bearer or Basic")
    }

    /// RFC 7617: base64 of `id:token`; the id cannot hold a colon, the token may.
    private static func basic(_ encoded: Slice<UnsafeBufferPointer<UInt8>>) -> PresentedCredential {
        guard !encoded.isEmpty, let data = Data(base64Encoded: Data(encoded)),
              let decoded = String(data: data, encoding: .utf8)
        else {
            return .unusable(reason: "malformed Basic credentials; expected base64 of id:token")
        }
        guard let colon = decoded.firstIndex(of: ":") else {
            return .unusable(reason: "Basic credentials without a colon; expected id:token")
        }
        return .basic(id: String(decoded[..<colon]), token: String(decoded[decoded.index(after: colon)...]))
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    private static func trimmed(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Slice<UnsafeBufferPointer<UInt8>> {
        guard let first = bytes.firstIndex(where: { !isBlank($0) }), let last = bytes.lastIndex(where: { !isBlank($0) }) else {
            return bytes[bytes.endIndex...]
        }
        return bytes[first...last]
    }

    /// ASCII case-insensitive comparison with a lower-case word.
    private static func equalsIgnoringCase(_ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ word: StaticString) -> Bool {
        guard bytes.count == word.utf8CodeUnitCount else { return false }
        return zip(bytes, UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)).allSatisfy { byte, expected in
            (byte | 0x20) == expected
        }
    }
}
