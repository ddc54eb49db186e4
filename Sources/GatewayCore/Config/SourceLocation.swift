/// A place in a configuration or mapping file, for `FILE:LINE:COLUMN` errors.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem found in a configuration, with where it is.
public struct ConfigIssue: Error, Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(_ message: String, at location: SourceLocation) {
        self.message = message
        self.location = location
    }

    /// `FILE:LINE:COLUMN: message`, the format editors and CI logs understand.
    public var description: String { "\(location): \(message)" }
}

/// Every problem found while loading a configuration. Loading does not stop at
/// the first problem, so an operator can fix them all in one pass.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]
    /// What was found alongside the errors but would not stop the gateway on
    /// its own: shown too, since it may be the cause (e.g. a glob that
    /// matched no mapping file).
    public var warnings: [ConfigIssue]

    public init(issues: [ConfigIssue], warnings: [ConfigIssue] = []) {
        self.issues = issues
        self.warnings = warnings
    }

    /// One line per problem, errors and warnings together in file order,
    /// each marked: `FILE:LINE:COLUMN: error: message` (the compilers' form,
    /// which editors and CI logs understand).
    public var description: String {
        let marked = issues.map { ($0, "error") } + warnings.map { ($0, "warning") }
        return marked
            .enumerated()
            .sorted { a, b in
                let (x, y) = (a.element.0.location, b.element.0.location)
                if x.file != y.file { return x.file < y.file }
                if x.line != y.line { return x.line < y.line }
                if x.column != y.column { return x.column < y.column }
                return a.offset < b.offset
            }
            .map { "\($0.element.0.location): \($0.element.1): \($0.element.0.message)" }
            .joined(separator: "\n")
    }
}
