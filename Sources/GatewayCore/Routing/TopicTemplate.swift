/// A compiled `topic:` template such as `dt/sensors/{device}/temperature`.
public struct TopicTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Part: Sendable, Hashable {
        case literal(String)
        case variable(String)
    }

    public let parts: [Part]
    public let text: String
    /// The variables it uses, kept so routing does not rebuild the set per request.
    public let usedVariables: Set<String>

    init(parts: [Part], text: String) {
        self.parts = parts
        self.text = text
        self.usedVariables = Set(parts.compactMap { if case .variable(let name) = $0 { return name } else { return nil } })
    }

    public var description: String { text }

    public var variables: [String] {
        parts.compactMap { if case .variable(let name) = $0 { return name } else { return nil } }
    }

    /// Bytes the template contributes without its variables.
    public var literalByteCount: Int {
        parts.reduce(0) { sum, part in
            if case .literal(let text) = part { return sum + text.utf8.count }
            return sum
        }
    }

    /// Parses a template. `{name}` and `{name*}` both refer to path variable
    /// `name`; `{gateway}` is the gateway's name.
    /// `allowingWildcards` is for templates that are keys, not topics
    /// (`shard_key`): any text goes, only the `{}` syntax is checked.
    public static func parse(_ text: String, allowingWildcards: Bool = false) -> Result<TopicTemplate, PatternError> {
        guard !text.isEmpty else { return .failure(PatternError("topic must not be empty")) }
        var parts: [Part] = []
        var literal = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(where: { $0 == "{" || $0 == "}" }) {
            if rest[open] == "}" {
                return .failure(PatternError("unmatched '}' in topic"))
            }
            literal += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else {
                return .failure(PatternError("unmatched '{' in topic"))
            }
            var name = String(rest[rest.index(after: open)..<close])
            if name.hasSuffix("*") { name.removeLast() }
            guard VariableName.isValid(name) else {
                return .failure(PatternError("'{\(name)}' is not a valid variable name"))
            }
            if !literal.isEmpty { parts.append(.literal(literal)); literal = "" }
            parts.append(.variable(name))
            rest = rest[rest.index(after: close)...]
        }
        literal += rest
        if !literal.isEmpty { parts.append(.literal(literal)) }
        if allowingWildcards { return .success(TopicTemplate(parts: parts, text: text)) }

        for part in parts {
            guard case .literal(let fixed) = part else { continue }
            if let bad = fixed.unicodeScalars.first(where: { $0 == "+" || $0 == "#" }) {
                return .failure(PatternError("topic must not contain the wildcard '\(bad)'"))
            }
            if fixed.unicodeScalars.contains(where: TopicValue.isControl) {
                return .failure(PatternError("topic must not contain control characters"))
            }
        }
        if text.hasPrefix("/") || text.hasSuffix("/") {
            return .failure(PatternError("topic must not begin or end with '/' (that makes an empty topic level)"))
        }
        if text.contains("//") {
            return .failure(PatternError("topic must not contain '//' (that makes an empty topic level)"))
        }
        return .success(TopicTemplate(parts: parts, text: text))
    }

    /// Fills in the variables; every value must already have been checked.
    public func render(_ values: [String: String]) -> String {
        var topic = ""
        for part in parts {
            switch part {
            case .literal(let text): topic += text
            case .variable(let name): topic += values[name] ?? ""
            }
        }
        return topic
    }
}
