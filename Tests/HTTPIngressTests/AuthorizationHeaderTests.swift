import Foundation
import GatewayCore
@testable import HTTPIngress
import Testing

/// The `Authorization` header alone, without a socket.
@Suite("Authorization header")
struct AuthorizationHeaderTests {
    @Test func bearer() {
        #expect(AuthorizationHeader.credential("Bearer abc") == .bearer(token: "abc"))
        #expect(AuthorizationHeader.credential("bearer  abc ") == .bearer(token: "abc"))
        #expect(AuthorizationHeader.credential("BEARER\tabc") == .bearer(token: "abc"))
        #expect(AuthorizationHeader.credential("Bearer") == .unusable(reason: "Bearer credentials without a token"))
        #expect(AuthorizationHeader.credential("Bearer   ") == .unusable(reason: "Bearer credentials without a token"))
    }

    @Test func basic() {
        let encoded = Data("dev-1:s3:cr3t".utf8).base64EncodedString()
        #expect(AuthorizationHeader.credential("Basic \(encoded)") == .basic(id: "dev-1", token: "s3:cr3t"))
        let emptyToken = Data("dev-1:".utf8).base64EncodedString()
        #expect(AuthorizationHeader.credential("Basic \(emptyToken)") == .basic(id: "dev-1", token: ""))
        let malformed = PresentedCredential.unusable(reason: "malformed Basic credentials; expected base64 of id:token")
        #expect(AuthorizationHeader.credential("Basic") == malformed)
        #expect(AuthorizationHeader.credential("Basic ***") == malformed)
        // Not UTF-8 once decoded.
        #expect(AuthorizationHeader.credential("Basic \(Data([0xFF, 0x3A, 0x41]).base64EncodedString())") == malformed)
        let noColon = Data("dev-1".utf8).base64EncodedString()
        #expect(AuthorizationHeader.credential("Basic \(noColon)")
            == .unusable(reason: "Basic credentials without a colon; expected id:token"))
    }

    @Test func otherSchemes() {
        let unsupported = PresentedCredential.unusable(reason: "unsupported Authorization scheme; use Bearer or Basic")
        #expect(AuthorizationHeader.credential("Digest username=\"a\"") == unsupported)
        #expect(AuthorizationHeader.credential("") == unsupported)
        #expect(AuthorizationHeader.credential("abc") == unsupported)
        // The scheme must be a word of its own.
        #expect(AuthorizationHeader.credential("Bearerabc") == unsupported)
    }

    @Test func reasonsNeverRepeatTheSecret() {
        let secret = "super-secret-token"
        for header in ["Basic \(secret)", "Token \(secret)", "\(secret)"] {
            guard case .unusable(let reason) = AuthorizationHeader.credential(header) else {
                Issue.record("expected unusable for \(header)")
                continue
            }
            #expect(!reason.contains(secret))
        }
    }
}
