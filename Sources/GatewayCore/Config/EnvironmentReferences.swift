import Yams

/// Resolves environment references in the scalar values of a parsed YAML
/// file, so one file can serve a fleet (`name: ${HOSTNAME}`).
///
/// - `${NAME}`: the variable's value; unset or empty is an error.
/// - `${NAME:-default}`: the default when the variable is unset or empty
///   (`${NAME:-}` asks for an empty value). The default is taken literally
///   up to the first `}`.
/// - `$${` is a literal `${`; any other `$` is itself, so `$aws/...` topics
///   and `{var}` templates are untouched.
///
/// Keys are never resolved, only values. A value that held a reference is a
/// string even when it resolves to nothing (it never becomes YAML null).
struct EnvironmentReferences {
    let environment: [String: String]
    /// The file's text, to place each problem at its own `$`.
    let source: String
    let file: String
    let issues: IssueList

    func resolve(_ node: Node) -> Node {
        switch node {
        case .scalar(var scalar):
            guard scalar.string.contains("$") else { return node }
            let expansion = Self.expand(scalar.string, environment: environment)
            for problem in expansion.problems {
                issues.add(problem.message, at: location(of: problem, in: scalar))
            }
            if !expansion.problems.isEmpty {
                issues.settle(SourceLocation(file: file, line: scalar.mark?.line ?? 1, column: scalar.mark?.column ?? 1))
            }
            guard expansion.value != scalar.string else { return node }
            let mark = scalar.mark
            scalar.string = expansion.value
            // Keeps an empty result a string rather than YAML null.
            scalar.style = .singleQuoted
            scalar.mark = mark
            return .scalar(scalar)
        case .mapping(let mapping):
            let pairs = mapping.map { ($0.key, resolve($0.value)) }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        case .sequence(let sequence):
            return .sequence(Node.Sequence(sequence.map(resolve), sequence.tag, sequence.style, sequence.mark))
        case .alias:
            return node
        }
    }

    struct Problem {
        /// The reference as written (`${NAME}`), to find it in the source.
        var written: String
        /// How many earlier references in the same value were written the same way.
        var occurrence: Int
        var message: String
    }

    struct Expansion {
        var value: String
        var problems: [Problem]
    }

    /// Expands every reference in `text`.
    static func expand(_ text: String, environment: [String: String]) -> Expansion {
        let scalars = Array(text.unicodeScalars)
        var output = String.UnicodeScalarView()
        var problems: [Problem] = []
        var seen: [String: Int] = [:]
        var index = 0
        func at(_ offset: Int) -> Unicode.Scalar? { offset < scalars.count ? scalars[offset] : nil }
        func problem(_ written: String, _ message: String) {
            problems.append(Problem(written: written, occurrence: seen[written, default: 0], message: message))
        }
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "$", at(index + 1) == "$", at(index + 2) == "{" {
                output.append(contentsOf: "${".unicodeScalars)
                index += 3
                continue
            }
            guard scalar == "$", at(index + 1) == "{" else {
                output.append(scalar)
                index += 1
                continue
            }
            guard let close = scalars[(index + 2)...].firstIndex(of: "}") else {
                let written = String(String.UnicodeScalarView(scalars[index...]))
                problem(written, "'${' starts an environment reference but has no closing '}' (write $${ for a literal '${')")
                output.append(contentsOf: scalars[index...])
                break
            }
            let written = String(String.UnicodeScalarView(scalars[index...close]))
            let inner = String(String.UnicodeScalarView(scalars[(index + 2)..<close]))
            defer {
                seen[written, default: 0] += 1
                index = close + 1
            }
            let name: String, fallback: String?
            if let separator = inner.range(of: ":-") {
                name = String(inner[..<separator.lowerBound])
                fallback = String(inner[separator.upperBound...])
            } else {
                name = inner
                fallback = nil
            }
            guard isName(name) else {
                problem(written, "'\(written)' is not an environment reference: a name is letters, digits and '_', not starting with a digit, optionally followed by :-default (write $${ for a literal '${')")
                continue
            }
            let value = environment[name]
            if let fallback {
                output.append(contentsOf: (value?.isEmpty ?? true ? fallback : value!).unicodeScalars)
            } else if let value, !value.isEmpty {
                output.append(contentsOf: value.unicodeScalars)
            } else if value == nil {
                problem(written, "environment variable \(name) is not set: set it where the gateway starts (the unit's Environment= or EnvironmentFile=), or give a default: ${\(name):-value}")
            } else {
                problem(written, "environment variable \(name) is set but empty: give it a value, or write ${\(name):-} if an empty value is meant")
            }
        }
        return Expansion(value: String(output), problems: problems)
    }

    static func isName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
        }
    }

    /// Where a problem's `$` is: found in the source from the start of its
    /// scalar (the value's own text may differ from the source by quotes and
    /// escapes); the scalar's start when it cannot be found.
    private func location(of problem: Problem, in scalar: Node.Scalar) -> SourceLocation {
        let line = scalar.mark?.line ?? 1, column = scalar.mark?.column ?? 1
        let fallback = SourceLocation(file: file, line: line, column: column)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        guard line >= 1, line <= lines.count else { return fallback }
        let needle = Array(problem.written.unicodeScalars)
        var remaining = problem.occurrence
        for number in line...lines.count {
            let text = Array(lines[number - 1].unicodeScalars)
            var start = number == line ? max(column - 1, 0) : 0
            while start + needle.count <= text.count {
                let escaped = start > 0 && text[start - 1] == "$"
                if !escaped, Array(text[start..<(start + needle.count)]) == needle {
                    if remaining == 0 { return SourceLocation(file: file, line: number, column: start + 1) }
                    remaining -= 1
                }
                start += 1
            }
        }
        return fallback
    }
}
