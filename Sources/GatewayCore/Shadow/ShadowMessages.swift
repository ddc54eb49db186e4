import Foundation

/// The JSON the gateway exchanges with the Device Shadow service
/// (Foundation's JSONSerialization: documents are at most 8 KB).
public enum ShadowMessages {
    /// AWS IoT Core's bound on a shadow document's state, in bytes.
    public static let maxDocumentBytes = 8 * 1024

    /// `{"clientToken": "…"}`: a get carries nothing else.
    public static func getRequest(clientToken: String) -> [UInt8] {
        serialize(["clientToken": clientToken]) ?? []
    }

    /// Turns what a device sent into an update request. The body is either
    /// its reported state (`{"temp": 21}`), or a shadow document of its own,
    /// `{"state": {"reported": …, "desired": …}, "version": N}` — recognized
    /// by having only those keys — whose optional version makes AWS refuse
    /// the update when the shadow has moved on (4.12 / 409).
    /// No `clientToken` for an update queued through an outage: nobody waits for its answer.
    public static func updateRequest(body: [UInt8], clientToken: String?) -> Result<[UInt8], IngressRejection> {
        if body.count > maxDocumentBytes {
            return .failure(.payloadTooLarge(limit: maxDocumentBytes, reason: "a shadow update is at most \(maxDocumentBytes) bytes"))
        }
        guard let object = parseObject(body) else {
            return .failure(.badRequest(reason: "the body must be a JSON object: the device's reported state, or {\"state\":{\"reported\":{...}}}"))
        }
        var request: [String: Any]
        if let document = asDocument(object) {
            request = document
        } else {
            request = ["state": ["reported": object]]
        }
        if let clientToken { request["clientToken"] = clientToken }
        guard let bytes = serialize(request) else {
            return .failure(.badRequest(reason: "the body cannot be re-encoded as JSON"))
        }
        return .success(bytes)
    }

    /// `{"state":{…},"version":N}` with nothing else, a state holding only
    /// `reported` and `desired` objects (or null, which clears them).
    private static func asDocument(_ object: [String: Any]) -> [String: Any]? {
        guard let state = object["state"] as? [String: Any], !state.isEmpty,
              Set(object.keys).isSubset(of: ["state", "version"]),
              Set(state.keys).isSubset(of: ["reported", "desired"]),
              state.values.allSatisfy({ $0 is [String: Any] || $0 is NSNull }) else { return nil }
        // A version that is not an integer goes as sent: AWS refuses it (400).
        return object
    }

    /// An answer from `…/accepted` or `…/rejected`, nil when it is not a JSON object.
    public static func decode(_ payload: [UInt8]) -> ShadowAnswer? {
        parseObject(payload).map(ShadowAnswer.init)
    }

    static func parseObject(_ bytes: [UInt8]) -> [String: Any]? {
        guard !bytes.isEmpty else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(bytes), options: [])) as? [String: Any]
    }

    static func serialize(_ object: Any) -> [UInt8]? {
        guard JSONSerialization.isValidJSONObject(object),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]) else { return nil }
        return Array(data)
    }
}

/// One decoded answer of the shadow service. Not `Sendable` (it holds
/// Foundation's JSON objects): it is made and used on one thread.
public struct ShadowAnswer {
    let object: [String: Any]

    /// The request's token, echoed by AWS.
    public var clientToken: String? { object["clientToken"] as? String }

    /// The document's version, when it has one.
    public var version: Int? { (object["version"] as? NSNumber)?.intValue }

    /// What the device hears: the document (or part of it) for an accepted
    /// get, the new version for an accepted update, and for a rejection the
    /// status AWS's code stands for, with AWS's message.
    public func reply(
        accepted: Bool, operation: ShadowOperation, answer: ShadowBinding.Answer, address: ShadowAddress
    ) -> Result<DeviceReply, IngressRejection> {
        guard accepted else { return .failure(rejection(address: address)) }
        var document = object
        document.removeValue(forKey: "clientToken")
        let body: Any
        switch (operation, answer) {
        case (_, .document):
            body = document
        case (.get, .state):
            body = document["state"] ?? [String: Any]()
        case (.get, .desired):
            body = (document["state"] as? [String: Any])?["desired"] ?? [String: Any]()
        case (.update, _):
            // The device needs the new version for its next conditional update.
            body = ["version": document["version"] ?? NSNull()]
        }
        guard let bytes = ShadowMessages.serialize(body) else {
            return .failure(.badGateway(reason: "the shadow service answered with a document that cannot be re-encoded"))
        }
        return .success(DeviceReply(kind: operation == .get ? .content : .changed, body: bytes))
    }

    /// A delta for a device that observes or polls: the whole message for
    /// `answer: document`, else its `state` (what differs, desired's values).
    public func deltaReply(answer: ShadowBinding.Answer) -> DeviceReply? {
        var document = object
        document.removeValue(forKey: "clientToken")
        let body: Any = answer == .document ? document : (document["state"] ?? [String: Any]())
        return ShadowMessages.serialize(body).map { DeviceReply(kind: .content, body: $0) }
    }

    /// AWS's error codes as the status contract's refusals.
    func rejection(address: ShadowAddress) -> IngressRejection {
        let code = (object["code"] as? NSNumber)?.intValue ?? 0
        let text = (object["message"] as? String).map { String($0.prefix(160)) } ?? "no message"
        switch code {
        case 400:
            return .badRequest(reason: "shadow service: \(text)")
        case 404:
            return .notFound(reason: "no shadow for '\(address)': \(text)")
        case 409:
            return .conflict(reason: "shadow of '\(address)': \(text); read it again and retry with its version")
        case 413:
            return .payloadTooLarge(limit: ShadowMessages.maxDocumentBytes, reason: "shadow service: \(text)")
        case 429:
            return .tooManyRequests(retryAfterSeconds: 1, reason: "shadow service: \(text)")
        case 503:
            return .unavailable(retryAfterSeconds: 5, reason: "shadow service: \(text)")
        case 401, 403:
            return .badGateway(reason: "the shadow service refused the gateway (\(code): \(text)); check the gateway's IoT policy")
        default:
            return .badGateway(reason: "shadow service error \(code): \(text)")
        }
    }
}
