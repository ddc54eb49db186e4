import Foundation
import Yams

/// Collects problems while a configuration is read, so loading can go on
/// after the first one.
final class IssueList {
    private(set) var issues: [ConfigIssue] = []
    private(set) var warnings: [ConfigIssue] = []
    /// Values already reported (an unresolvable `${NAME}`): whatever else is
    /// said about them would only repeat the cause.
    private var settled: Set<SourceLocation> = []

    func add(_ message: String, at location: SourceLocation) {
        guard !settled.contains(location) else { return }
        issues.append(ConfigIssue(message, at: location))
    }

    /// Problems reported later at `location` are left out.
    func settle(_ location: SourceLocation) {
        settled.insert(location)
    }

    func warn(_ message: String, at location: SourceLocation) {
        warnings.append(ConfigIssue(message, at: location))
    }

    var isEmpty: Bool { issues.isEmpty }

    /// The errors, with the warnings found alongside them.
    var failure: ConfigError { ConfigError(issues: issues, warnings: warnings) }
}

/// A parsed YAML file: its root node and where it came from.
struct YAMLFile {
    let path: String
    let root: Node?
    /// The file's text, to place problems found after parsing.
    var text: String? = nil

    /// The directory relative paths in this file are resolved against.
    var directory: String { (path as NSString).deletingLastPathComponent }

    /// Reads and parses `path`; on failure records the problem and returns nil.
    /// With an `environment`, `${NAME}` references in scalar values are
    /// resolved from it (see `EnvironmentReferences`); a reference that
    /// cannot be resolved is a problem at its `$`.
    static func load(
        _ path: String, issues: IssueList, reportedAs shown: String? = nil, environment: [String: String]? = nil
    ) -> YAMLFile? {
        let name = shown ?? path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            // Foundation's own text for this is "NSCocoaErrorDomain error 256".
            issues.add("is a directory, not a YAML file (name the file itself, e.g. gateway.yaml)", at: SourceLocation(file: name, line: 1, column: 1))
            return nil
        }
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let decoded = String(data: data, encoding: .utf8) else {
                issues.add("file is not valid UTF-8", at: SourceLocation(file: name, line: 1, column: 1))
                return nil
            }
            text = decoded
        } catch {
            issues.add("cannot read file: \(Self.describe(error))", at: SourceLocation(file: name, line: 1, column: 1))
            return nil
        }
        do {
            var root = try Yams.compose(yaml: text)
            if let environment, let parsed = root {
                let resolver = EnvironmentReferences(environment: environment, source: text, file: name, issues: issues)
                root = resolver.resolve(parsed)
            }
            return YAMLFile(path: name, root: root, text: text)
        } catch let error as YamlError {
            let (mark, message) = Self.describe(error)
            issues.add(message, at: SourceLocation(file: name, line: mark?.line ?? 1, column: mark?.column ?? 1))
        } catch {
            issues.add("invalid YAML: \(error)", at: SourceLocation(file: name, line: 1, column: 1))
        }
        return nil
    }

    private static func describe(_ error: YamlError) -> (Mark?, String) {
        switch error {
        case .scanner(_, let problem, let mark, _),
             .parser(_, let problem, let mark, _),
             .composer(_, let problem, let mark, _):
            return (mark, "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return (context.mark, "duplicate key: \(duplicates.joined(separator: ", "))")
        case .reader(let problem, _, _, _):
            return (nil, "invalid YAML: \(problem)")
        default:
            return (nil, "invalid YAML: \(error)")
        }
    }

    private static func describe(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
           underlying.domain == NSPOSIXErrorDomain, let code = POSIXErrorCode(rawValue: Int32(underlying.code)) {
            return String(cString: strerror(code.rawValue))
        }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoSuchFileError {
            return "No such file or directory"
        }
        return nsError.localizedDescription
    }
}

/// Typed access to YAML nodes that records a located issue for every value of
/// the wrong shape and returns nil for it.
struct NodeReader {
    let file: String
    let issues: IssueList

    func location(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    func fail(_ message: String, at node: Node) {
        issues.add(message, at: location(node))
    }

    func warn(_ message: String, at node: Node) {
        issues.warn(message, at: location(node))
    }

    /// A mapping's entries by key. Unknown keys are reported against their
    /// own position, so a typo points at itself.
    func mapping(_ node: Node, what: String, allowed: [String]) -> Entries? {
        guard case .mapping(let mapping) = node else {
            fail("\(what) must be a mapping", at: node)
            return nil
        }
        var entries = Entries(reader: self, owner: node)
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                fail("keys in \(what) must be strings", at: key)
                continue
            }
            guard allowed.contains(name) else {
                let suggestion = Self.closest(to: name, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                fail("unknown key '\(name)' in \(what)\(suggestion)", at: key)
                continue
            }
            entries.values[name] = (key, value)
        }
        return entries
    }

    func isNull(_ node: Node) -> Bool {
        if case .scalar(let scalar) = node, scalar.style == .plain,
           ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
            return true
        }
        return false
    }

    /// One of an enumeration's raw values; the error names them all.
    func choice<Value: RawRepresentable & CaseIterable>(_ node: Node, what: String) -> Value? where Value.RawValue == String {
        guard let text = string(node, what: what) else { return nil }
        if let value = Value(rawValue: text) { return value }
        let names = Value.allCases.map { "'\($0.rawValue)'" }
        let list = names.count > 1 ? names.dropLast().joined(separator: ", ") + " or " + names.last! : names.joined()
        fail("\(what) must be \(list), got '\(text)'", at: node)
        return nil
    }

    func string(_ node: Node, what: String) -> String? {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            fail("\(what) must be a string", at: node)
            return nil
        }
        return scalar.string
    }

    func int(_ node: Node, what: String, range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string) else {
            fail("\(what) must be an integer", at: node)
            return nil
        }
        guard range.contains(value) else {
            fail("\(what) must be between \(range.lowerBound) and \(range.upperBound), got \(value)", at: node)
            return nil
        }
        return value
    }

    func bool(_ node: Node, what: String) -> Bool? {
        guard case .scalar(let scalar) = node else {
            fail("\(what) must be true or false", at: node)
            return nil
        }
        switch scalar.string {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            fail("\(what) must be true or false, got '\(scalar.string)'", at: node)
            return nil
        }
    }

    /// A duration such as `30m`; reports a located issue when it is not one.
    func duration(_ node: Node, what: String) -> Double? {
        guard let text = string(node, what: what) else { return nil }
        guard let seconds = DurationText.parse(text) else {
            fail("\(what) must be a duration such as 30s, 5m, 2h or 1d, got '\(text)'", at: node)
            return nil
        }
        return seconds
    }

    /// A byte count: an integer, or a number with KiB/MiB/GiB (or KB/MB/GB).
    func byteSize(_ node: Node, what: String, range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let scalar) = node, let value = ByteSize.parse(scalar.string) else {
            fail("\(what) must be a byte count such as 131072 or 128KiB", at: node)
            return nil
        }
        guard range.contains(value) else {
            fail("\(what) must be between \(range.lowerBound) and \(range.upperBound) bytes, got \(value)", at: node)
            return nil
        }
        return value
    }

    /// A list of strings; a single string is accepted as a list of one.
    func stringList(_ node: Node, what: String) -> [(String, Node)]? {
        switch node {
        case .scalar where !isNull(node):
            return string(node, what: what).map { [($0, node)] }
        case .sequence(let sequence):
            var result: [(String, Node)] = []
            for item in sequence {
                if let value = string(item, what: "each entry of \(what)") {
                    result.append((value, item))
                }
            }
            return result
        default:
            fail("\(what) must be a list of strings", at: node)
            return nil
        }
    }

    func sequence(_ node: Node, what: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            fail("\(what) must be a list", at: node)
            return nil
        }
        return Array(sequence)
    }

    private static func closest(to name: String, in candidates: [String]) -> String? {
        candidates
            .map { ($0, EditDistance.between(name, $0)) }
            .filter { $0.1 <= 2 }
            .min { $0.1 < $1.1 }?.0
    }

    /// The known keys of one mapping node.
    struct Entries {
        let reader: NodeReader
        let owner: Node
        fileprivate(set) var values: [String: (key: Node, value: Node)] = [:]

        subscript(_ key: String) -> Node? { values[key]?.value }

        /// The value for a key that must be present; reports its absence at
        /// the mapping that lacks it.
        func required(_ key: String, in what: String) -> Node? {
            if let value = values[key]?.value { return value }
            reader.fail("missing required key '\(key)' in \(what)", at: owner)
            return nil
        }
    }
}

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
enum EditDistance {
    static func between(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// Parses byte counts written as `131072`, `128KiB`, `512MiB`, `1GiB`, `64KB`.
public enum ByteSize {
    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
            ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000),
            ("B", 1),
        ]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = Int(number), value >= 0 else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        return Int(trimmed)
    }
}
