/// Follows JSON text byte by byte far enough to tell whether a byte is
/// inside a string literal (escapes included): what the scans that find a
/// batch's elements and a trailing comma share, without parsing.
struct JSONStringTracker {
    private var inString = false
    private var escaped = false

    /// Takes the next byte; true when it belongs to a string literal (its
    /// quotes included), so structure scans skip it.
    mutating func consume(_ byte: UInt8) -> Bool {
        if inString {
            if escaped { escaped = false }
            else if byte == UInt8(ascii: "\\") { escaped = true }
            else if byte == UInt8(ascii: "\"") { inString = false }
            return true
        }
        if byte == UInt8(ascii: "\"") { inString = true; return true }
        return false
    }
}
