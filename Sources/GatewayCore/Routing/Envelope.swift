import Foundation

/// Builds the `payload: envelope` JSON object:
/// `{"gateway","protocol","method","device","resource","vars","received_at",
///   "content_type","payload"[,"payload_encoding"]}`.
///
/// The body goes in as the JSON value itself when it is JSON (declared JSON or
/// undeclared, and parsing as JSON), as a string when it is other UTF-8 text,
/// and otherwise as base64 with `"payload_encoding": "base64"`.
public enum Envelope {
    public static func encode(request: IngressRequest, route: Route, gateway: String) -> [UInt8] {
        var json = JSONWriter()
        json.beginObject()
        json.key("gateway"); json.string(gateway)
        json.key("protocol"); json.string(request.ingress.rawValue)
        json.key("method"); json.string(request.method.rawValue)
        json.key("device")
        if let device = route.deviceID { json.string(device) } else { json.null() }
        json.key("resource"); json.string(request.resource)
        json.key("vars")
        json.beginObject()
        for variable in route.variables {
            json.key(variable.name); json.string(variable.value)
        }
        json.endObject()
        json.key("received_at"); json.string(Timestamp.rfc3339(request.receivedAt))
        json.key("content_type")
        if let type = request.contentType { json.string(type) } else { json.null() }
        json.key("payload")
        switch classify(request.payload, contentType: request.contentType) {
        case .json:
            json.raw(request.payload)
        case .text(let text):
            json.string(text)
        case .binary:
            json.string(Data(request.payload).base64EncodedString())
            json.key("payload_encoding"); json.string("base64")
        }
        json.endObject()
        return json.bytes
    }

    enum Body: Equatable {
        case json
        case text(String)
        case binary
    }

    static func classify(_ payload: [UInt8], contentType: String?) -> Body {
        guard let text = String(validating: payload, as: UTF8.self) else { return .binary }
        let declaresJSON = contentType.map(isJSONMediaType) ?? true
        if declaresJSON, !payload.isEmpty, isJSON(payload) { return .json }
        return .text(text)
    }

    /// `application/json`, `application/*+json`, with or without parameters.
    static func isJSONMediaType(_ type: String) -> Bool {
        let base = type.split(separator: ";", maxSplits: 1).first?
            .trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        return base == "application/json" || (base.hasPrefix("application/") && base.hasSuffix("+json"))
    }

    static func isJSON(_ payload: [UInt8]) -> Bool {
        PayloadShaper.isJSON(payload)
    }
}

/// RFC 3339 timestamps in UTC with milliseconds, e.g. `2026-11-26T09:30:00.123Z`.
public enum Timestamp {
    public static func rfc3339(_ date: Date) -> String {
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(millis / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
            + ".\(pad(Int32(millis % 1000), 3))Z"
    }
}
