/// Checks a value before it is substituted into an MQTT topic. A value that
/// passes cannot add a topic level, a wildcard, or a `$` system prefix.
public enum TopicValue {
    /// Nil when `value` is safe; otherwise the reason it is not.
    public static func problem(in value: String) -> String? {
        if value.isEmpty { return "is empty" }
        if value.hasPrefix("$") { return "starts with '$'" }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "/": return "contains '/'"
            case "+": return "contains the wildcard '+'"
            case "#": return "contains the wildcard '#'"
            case "\u{0}": return "contains NUL"
            default:
                if isControl(scalar) { return "contains a control character" }
            }
        }
        return nil
    }

    /// C0 and C1 control characters and DEL, which MQTT discourages in topics.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
