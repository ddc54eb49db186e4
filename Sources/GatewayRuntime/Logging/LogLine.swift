import Logging

/// One log entry as one line of text: what `GatewayLogHandler` writes.
///
///     2026-12-03T06:10:40.123Z warning iot-gateway: upstream connection lost mqtt.connection=0 reason="connection lost"
///     <4>warning iot-gateway: upstream connection lost mqtt.connection=0 reason="connection lost"
///
/// The second form is for the journal: the `<N>` prefix is the syslog
/// priority journald reads from a stream (and strips), and the timestamp is
/// left out because the journal records its own. The message comes first
/// (it is constant, so it is what one greps for), then the metadata as
/// logfmt pairs, sorted by key. Nothing in a value can start a new line.
public enum LogLine {
    /// The syslog priority for a level (sd-daemon's `SD_*` prefixes:
    /// 0 emerg … 7 debug). swift-log has no emerg or alert.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// The whole line, ending in a newline. `timestamp` nil: the journal form.
    public static func format(
        level: Logger.Level, label: String, message: String, metadata: Logger.Metadata, timestamp: String?
    ) -> String {
        var line = ""
        line.reserveCapacity(96 + message.utf8.count + metadata.count * 24)
        if let timestamp {
            line += timestamp
            line += " "
        } else {
            line += "<\(priority(level))>"
        }
        line += level.rawValue
        if !label.isEmpty {
            line += " "
            appendEscaped(label, to: &line)
            line += ":"
        }
        line += " "
        appendEscaped(message, to: &line)
        for key in metadata.keys.sorted() {
            line += " "
            appendKey(key, to: &line)
            line += "="
            appendValue(render(metadata[key]!), to: &line)
        }
        line += "\n"
        return line
    }

    /// A value as logfmt: bare when it is a plain word, otherwise in double
    /// quotes with `"` and `\` escaped and control characters written out.
    public static func appendValue(_ value: String, to line: inout String) {
        guard needsQuotes(value) else {
            line += value
            return
        }
        line += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": line += "\\\""
            case "\\": line += "\\\\"
            default: appendScalar(scalar, to: &line)
            }
        }
        line += "\""
    }

    /// Quoted when empty, or holding a space, `=`, a quote, a backslash or
    /// any control character (a newline above all).
    static func needsQuotes(_ value: String) -> Bool {
        value.isEmpty || value.unicodeScalars.contains { scalar in
            scalar == " " || scalar == "=" || scalar == "\"" || scalar == "\\" || isControl(scalar)
        }
    }

    /// Keys are constants in our code; a character that would break the
    /// pair (space, `=`, quote, control) becomes `_` rather than a quote,
    /// since logfmt keys are never quoted.
    static func appendKey(_ key: String, to line: inout String) {
        if key.isEmpty {
            line += "_"
            return
        }
        for scalar in key.unicodeScalars {
            if scalar == " " || scalar == "=" || scalar == "\"" || isControl(scalar) {
                line += "_"
            } else {
                line.unicodeScalars.append(scalar)
            }
        }
    }

    /// Free text (the message, the label): control characters written out,
    /// everything else as it is.
    static func appendEscaped(_ text: String, to line: inout String) {
        guard text.unicodeScalars.contains(where: isControl) else {
            line += text
            return
        }
        for scalar in text.unicodeScalars { appendScalar(scalar, to: &line) }
    }

    private static func appendScalar(_ scalar: Unicode.Scalar, to line: inout String) {
        switch scalar {
        case "\n": line += "\\n"
        case "\r": line += "\\r"
        case "\t": line += "\\t"
        default:
            if isControl(scalar) {
                let hex = String(scalar.value, radix: 16)
                line += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            } else {
                line.unicodeScalars.append(scalar)
            }
        }
    }

    /// C0, DEL, C1, and the Unicode line and paragraph separators (which
    /// some viewers break lines at).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    /// A metadata value as text; nested values in swift-log's own notation.
    static func render(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let convertible): return convertible.description
        case .array(let items): return "[" + items.map(render).joined(separator: ", ") + "]"
        case .dictionary(let entries):
            return "[" + entries.keys.sorted().map { "\($0): \(render(entries[$0]!))" }.joined(separator: ", ") + "]"
        }
    }
}
