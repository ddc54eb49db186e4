import Foundation

/// CoAP Content-Format numbers (IANA "CoAP Content-Formats" registry) as media
/// types, so envelopes say `application/json` whichever protocol a reading
/// came over.
public enum ContentFormats {
    public static let mediaTypes: [UInt32: String] = [
        0: "text/plain;charset=utf-8",
        40: "application/link-format",
        41: "application/xml",
        42: "application/octet-stream",
        47: "application/exi",
        50: "application/json",
        51: "application/json-patch+json",
        52: "application/merge-patch+json",
        60: "application/cbor",
        61: "application/cwt",
        110: "application/senml+json",
        111: "application/sensml+json",
        112: "application/senml+cbor",
        113: "application/sensml+cbor",
        310: "application/senml+xml",
        311: "application/sensml+xml",
        11542: "application/vnd.oma.lwm2m+tlv",
        11543: "application/vnd.oma.lwm2m+json",
    ]

    /// A registered media type, or `coap-content-format/N` for numbers this
    /// table does not know, so the information is not lost.
    public static func mediaType(for format: UInt32) -> String {
        mediaTypes[format] ?? "coap-content-format/\(format)"
    }

    /// The Content-Format of a media type the gateway answers with; nil when
    /// the registry has none (the answer then goes without the option).
    public static func number(for mediaType: String) -> UInt32? {
        if mediaType == "application/json" { return 50 }
        return mediaTypes.first { $0.value == mediaType }?.key
    }

    /// A media type without its parameters, lowercased: what `accept:`
    /// lists and requests are compared by (`text/plain;charset=utf-8` is
    /// `text/plain`).
    /// Runs for every request that declares a media type, so it works on
    /// the UTF-8 bytes and returns the string itself when it is already a
    /// base (Foundation's trimming bridged to NSString and cost about 6 % of
    /// the gateway's CPU under load). Only SP and HTAB are trimmed: the
    /// whitespace RFC 9110 allows around a media type.
    public static func base(of mediaType: String) -> String {
        let bytes = mediaType.utf8
        var start = bytes.startIndex
        var end = bytes.endIndex
        var plain = true
        for index in bytes.indices {
            let byte = bytes[index]
            if byte == UInt8(ascii: ";") { end = index; plain = false; break }
            if byte == 0x20 || byte == 0x09 || (byte >= 0x41 && byte <= 0x5A) || byte >= 0x80 { plain = false }
        }
        if plain { return mediaType }
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start = bytes.index(after: start) }
        while start < end {
            let last = bytes.index(before: end)
            guard bytes[last] == 0x20 || bytes[last] == 0x09 else { break }
            end = last
        }
        return String(mediaType[start..<end]).lowercased()
    }

    /// The Content-Format number of a media type's base, for discovery's
    /// `ct` (nil when the registry has none).
    public static func number(forBase base: String) -> UInt32? {
        if base == "application/json" { return 50 }
        if base == "text/plain" { return 0 }
        return mediaTypes.first { $0.value == base }?.key
    }
}
