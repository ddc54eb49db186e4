/// Turns what each protocol carries as a path into decoded segments. Both
/// protocols end up with the same `[String]` so the router treats them alike.
public enum PathDecoding {
    /// An HTTP request path such as `/sensors/a%2Fb/temp`: split at `/`, then
    /// each segment percent-decoded on its own, so `%2F` stays inside its
    /// segment (and is later refused by the topic check, not misrouted).
    public static func httpPath(_ raw: String) -> Result<[String], IngressRejection> {
        guard raw.hasPrefix("/") else {
            return .failure(.badRequest(reason: "request target must be an absolute path"))
        }
        if raw == "/" { return .success([]) }
        // On the contiguous bytes: the generic split of a UTF8View and a
        // decoded copy of every segment cost about 2.5 % of the gateway's
        // CPU per HTTP request; a segment without `%` is validated in place.
        var raw = raw
        return raw.withUTF8 { bytes in
            var segments: [String] = []
            var start = 1
            while true {
                var end = start
                var escaped = false
                while end < bytes.count, bytes[end] != UInt8(ascii: "/") {
                    if bytes[end] == UInt8(ascii: "%") { escaped = true }
                    end += 1
                }
                let part = UnsafeBufferPointer(rebasing: bytes[start..<end])
                let segment: String?
                if escaped {
                    guard let decoded = percentDecode(part) else {
                        return .failure(.badRequest(reason: "invalid percent-encoding in path"))
                    }
                    segment = decoded.withUnsafeBufferPointer(text)
                } else {
                    segment = text(part)
                }
                guard let segment else { return .failure(.badRequest(reason: "path is not valid UTF-8")) }
                segments.append(segment)
                guard end < bytes.count else { return .success(segments) }
                start = end + 1
            }
        }
    }

    /// CoAP Uri-Path options: each option is one segment, already unescaped.
    public static func coapPath(_ options: [[UInt8]]) -> Result<[String], IngressRejection> {
        var segments: [String] = []
        segments.reserveCapacity(options.count)
        for option in options {
            guard let segment = option.withUnsafeBufferPointer(text) else {
                return .failure(.badRequest(reason: "Uri-Path is not valid UTF-8"))
            }
            segments.append(segment)
        }
        return .success(segments)
    }

    /// The bytes as a String, nil when they are not UTF-8. The standard
    /// library's `String(validating:as:)` runs unspecialized here (a generic
    /// metadata lookup per call, about 3 % of the CoAP thread); ASCII, which
    /// paths almost always are, is valid as it is.
    static func text(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var index = 0
        while index < bytes.count, bytes[index] < 0x80 { index += 1 }
        if index == bytes.count { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    static func percentDecode<S: Collection>(_ bytes: S) -> [UInt8]? where S.Element == UInt8 {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                let first = bytes.index(after: index)
                guard first != bytes.endIndex else { return nil }
                let second = bytes.index(after: first)
                guard second != bytes.endIndex,
                      let high = hexValue(bytes[first]), let low = hexValue(bytes[second]) else { return nil }
                result.append(high << 4 | low)
                index = bytes.index(after: second)
            } else {
                result.append(byte)
                index = bytes.index(after: index)
            }
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
