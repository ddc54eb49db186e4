import Foundation
import GatewayCore
import HTTPIngress

/// `http_request`: what the HTTP ingress does with a request once
/// libmicrohttpd has parsed it: the head (`RequestHead.read`: method,
/// UTF-8 check, percent-decoding and path splitting, Content-Type, body
/// framing and limit), the `Authorization` header, the query arguments the
/// gateway reads, then authentication, routing, the envelope of a routed
/// request and the answer's status.
///
/// Input: an HTTP/1.1 request as a client sends it, `\n` or `\r\n` line
/// ends: `METHOD TARGET [VERSION]`, header lines, an empty line, the body.
/// The version `HTTPS` (instead of e.g. `HTTP/1.1`) makes it a request on
/// the TLS listener, where `Authorization` counts. What MHD does itself is
/// imitated, not fuzzed: the target is split at `?`, the query at `&` and
/// `=` (without decoding), and a NUL ends the target as it ends MHD's C string.
package enum HTTPRequestTarget {
    /// The answer's status; nil when the input is no request.
    @discardableResult
    package static func run(_ input: [UInt8]) -> UInt32? {
        let fixture = FuzzFixture.shared
        let (lines, body) = split(input[...])
        guard let requestLine = lines.first else { return nil }
        let words = requestLine.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
        guard words.count >= 2 else { return nil }
        let method = String(decoding: words[0], as: UTF8.self)
        let secure = words.count == 3 && words[2].elementsEqual("HTTPS".utf8)
        var target = words[1]
        if let nul = target.firstIndex(of: 0) { target = target[..<nul] }
        let question = target.firstIndex(of: UInt8(ascii: "?"))
        let pathPart = question.map { target[..<$0] } ?? target
        let queryPart = question.map { target[target.index(after: $0)...] } ?? []

        var headers: [(name: String, value: ArraySlice<UInt8>)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            var value = line[line.index(after: colon)...]
            while value.first == UInt8(ascii: " ") { value = value.dropFirst() }
            headers.append((String(decoding: line[..<colon], as: UTF8.self), value))
        }
        // Header names are case-insensitive; MHD finds the first.
        func header(_ name: String) -> ArraySlice<UInt8>? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
        func text(_ bytes: ArraySlice<UInt8>) -> String {
            // MHD hands headers over as C strings.
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }

        let head = RequestHead.read(
            method: method, target: String(validating: pathPart, as: UTF8.self),
            header: { header($0).map(text) },
            peer: "192.0.2.7:40000", receivedAt: FuzzFixture.now,
            transport: secure ? .secure : .plain, maxBody: fixture.maxBody
        )
        if let refusal = head.refusal {
            return check(HTTPAnswer(rejection: refusal))
        }
        if body.count > fixture.maxBody {
            return check(HTTPAnswer(rejection: .payloadTooLarge(limit: fixture.maxBody, reason: "too large")))
        }
        var credential = PresentedCredential.none
        if secure, let authorization = header("Authorization") {
            let value = Array(authorization.prefix { $0 != 0 })
            credential = value.withUnsafeBufferPointer(AuthorizationHeader.credential(bytes:))
        }
        let arguments = query(queryPart)
        let request = head.request(body: Array(body), credential: credential) { name in
            arguments.first { $0.name == name }?.value
        }

        let authentication = fixture.authenticator.authenticate(request.credential, transport: request.transport)
        switch fixture.router.route(request, authentication: authentication) {
        case .success(let route):
            if case .failure(let rejection) = Shaping.messages(request, route, fixture) {
                return check(HTTPAnswer(rejection: rejection))
            }
            return check(HTTPAnswer(outcome: .success(.stored)))
        case .failure(let rejection):
            return check(HTTPAnswer(rejection: head.method.adjusted(rejection)))
        }
    }

    /// Lines up to the first empty one, and what follows it.
    static func split(_ input: ArraySlice<UInt8>) -> (lines: [ArraySlice<UInt8>], body: ArraySlice<UInt8>) {
        var lines: [ArraySlice<UInt8>] = []
        var rest = input
        while let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
            var line = rest[..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            rest = rest[rest.index(after: newline)...]
            if line.isEmpty { return (lines, rest) }
            lines.append(line)
            if lines.count > 64 { break }
        }
        if !rest.isEmpty, lines.count <= 64 { lines.append(rest) }
        return (lines, [])
    }

    static func query(_ bytes: ArraySlice<UInt8>) -> [(name: String, value: String)] {
        bytes.split(separator: UInt8(ascii: "&")).map { pair in
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            return (String(decoding: parts[0], as: UTF8.self), parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : "")
        }
    }

    static func check(_ answer: HTTPAnswer) -> UInt32 {
        precondition((200...599).contains(answer.status), "not an HTTP status: \(answer.status)")
        return answer.status
    }
}
