import Foundation

/// Whether bytes are JSON text as RFC 8259 writes it. Foundation's parser
/// on Linux also takes a trailing comma (`[1,]`, `{"a":1,}`) and a leading
/// byte order mark. A body found to be JSON is published, split or
/// embedded in an envelope as it came, so anything it lets through beyond
/// the RFC would reach consumers as broken JSON.
public enum StrictJSON {
    public static func isValid<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        !breaksRFC(bytes) && (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
    }

    /// What Foundation's parser lets through beyond RFC 8259, checked
    /// without parsing: for a caller that parses the text itself anyway.
    /// JSON text starts with whitespace or a value, never 0xEF (a BOM); it
    /// never holds a raw NUL (control characters are escaped in strings and
    /// are not whitespace), yet Foundation takes a number followed by NULs
    /// ("0\0\0"), found by the fuzzers; and no `,` before `]` or `}`.
    public static func breaksRFC<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        bytes.first == 0xEF || bytes.contains(0) || hasTrailingComma(bytes)
    }

    /// A `,` followed (after whitespace) by `]` or `}`, outside strings.
    static func hasTrailingComma<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        var strings = JSONStringTracker()
        var afterComma = false
        for byte in bytes {
            if strings.consume(byte) {
                afterComma = false
                continue
            }
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D:
                continue
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if afterComma { return true }
            default:
                break
            }
            afterComma = byte == UInt8(ascii: ",")
        }
        return false
    }
}
