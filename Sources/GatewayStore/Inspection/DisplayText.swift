/// Makes stored bytes and strings safe to print on an operator's terminal.
///
/// Payloads come from devices: a control character or an escape sequence in
/// one must not reach the terminal as is.
public enum DisplayText {
    /// A one-line preview of a payload: UTF-8 text escaped and cut after
    /// `limit` characters, anything else as a hex prefix.
    public static func payload(_ payload: [UInt8], limit: Int = 60, hexBytes: Int = 16) -> String {
        if payload.isEmpty { return "(empty)" }
        if let text = text(payload) {
            return escaped(text, limit: limit)
        }
        let shown = payload.prefix(hexBytes).map(hex).joined()
        return "hex:" + shown + (payload.count > hexBytes ? "…" : "")
    }

    /// The payload as text when it is valid UTF-8 without control characters
    /// other than tab, CR and LF (which are common in JSON and CSV); nil for
    /// anything that should be shown as bytes.
    public static func text(_ payload: [UInt8]) -> String? {
        guard let text = String(validating: payload, as: UTF8.self) else { return nil }
        for scalar in text.unicodeScalars where scalar.properties.generalCategory == .control {
            if scalar != "\t" && scalar != "\n" && scalar != "\r" { return nil }
        }
        return text
    }

    /// `text` with control, format and separator characters (and `\`) escaped
    /// Swift-style (`\n`, `\u{1B}`), cut after `limit` characters with `…`.
    public static func escaped(_ text: String, limit: Int = .max) -> String {
        var result = ""
        var shown = 0
        for scalar in text.unicodeScalars {
            if shown == limit { return result + "…" }
            shown += 1
            switch scalar {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                switch scalar.properties.generalCategory {
                case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .unassigned, .surrogate:
                    result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
                default:
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return byte < 16 ? "0" + digits : digits
    }
}
