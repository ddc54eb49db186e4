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
    public static func base(of mediaType: String) -> String {
        (mediaType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? "")
            .trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// The Content-Format number of a media type's base, for discovery's
    /// `ct` (nil when the registry has none).
    public static func number(forBase base: String) -> UInt32? {
        if base == "application/json" { return 50 }
        if base == "text/plain" { return 0 }
        return mediaTypes.first { $0.value == base }?.key
    }
}
