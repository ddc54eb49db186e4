import Foundation

/// Splits a batch body into its elements' own bytes, so a `payload: raw`
/// batch publishes each element exactly as the device wrote it.
public enum BatchSplitting {
    /// The elements of a JSON array, each trimmed of surrounding whitespace.
    /// The body must already be known to be valid JSON.
    public static func arrayElements(_ body: [UInt8]) -> Result<[ArraySlice<UInt8>], FormatError> {
        guard let open = body.firstIndex(where: { !isSpace($0) }), body[open] == UInt8(ascii: "[") else {
            return .failure(FormatError("a batch must be a JSON array (or NDJSON, Content-Type application/x-ndjson)"))
        }
        var elements: [ArraySlice<UInt8>] = []
        var depth = 0
        var strings = JSONStringTracker()
        var start = open + 1
        for index in open..<body.count {
            let byte = body[index]
            if strings.consume(byte) { continue }
            switch byte {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 {
                    let element = trimmed(body[start..<index])
                    if !element.isEmpty { elements.append(element) }
                    return .success(elements)
                }
            case UInt8(ascii: ","):
                if depth == 1 {
                    elements.append(trimmed(body[start..<index]))
                    start = index + 1
                }
            default:
                break
            }
        }
        return .failure(FormatError("the JSON array is not closed"))
    }

    /// NDJSON: one JSON value per line; blank lines (and a final newline)
    /// are allowed, CRLF too. Each line is returned with its 1-based number.
    public static func lines(_ body: [UInt8]) -> [(line: Int, bytes: ArraySlice<UInt8>)] {
        var lines: [(line: Int, bytes: ArraySlice<UInt8>)] = []
        var number = 0
        for line in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            let text = trimmed(line)
            if !text.isEmpty { lines.append((number, text)) }
        }
        return lines
    }

    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, isSpace(first) { slice = slice.dropFirst() }
        while let last = slice.last, isSpace(last) { slice = slice.dropLast() }
        return slice
    }

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
