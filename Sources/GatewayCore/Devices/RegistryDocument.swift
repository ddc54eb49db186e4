import Yams

/// One registry file as text, edited by lines so the operator's comments,
/// blank lines, indentation and key order stay as they were. Yams' node
/// marks say where each entry starts; the lines after it that are indented
/// deeper than its `-` are the entry.
///
/// Only block lists (`devices:` then `- id: …` lines) can be edited; a
/// flow list (`devices: [{…}]`) is refused with a message saying so.
public struct RegistryDocument: Sendable {
    /// The file's name in messages.
    public let file: String
    private var lines: [String]
    private let lineEnding: String
    private let endsWithNewline: Bool
    public private(set) var entries: [Entry]
    private let list: List

    /// Where one `- …` item of the `devices:` list is.
    public struct Entry: Sendable {
        /// The `id:` value, if it is a plain string.
        public var id: String?
        /// 1-based line of the entry's `-`, for messages.
        public var line: Int { dashLine + 1 }
        var dashLine: Int
        var dashColumn: Int
        /// Where the mapping's keys start; nil when the item is no block mapping.
        var keyColumn: Int?
        /// The last line of the entry (inclusive).
        var lastLine: Int
        /// Comment lines directly above the `-`, at its indentation: the
        /// entry's own description, removed with it.
        var leadingComments: Int
        /// The scalar value of `disabled:`, if the entry has one.
        var disabled: Span?
        /// Where a `disabled:` key would go: `keyColumn` spaces of indentation.
        var isBlockMapping: Bool { keyColumn != nil }
    }

    /// A value's characters on one line: unicode scalar offsets, end exclusive.
    struct Span: Sendable {
        var line: Int
        var start: Int
        var end: Int
    }

    private enum List: Sendable {
        /// No `devices:` key at all (an empty file, or comments only).
        case absent
        /// `devices:` with no value (or `~`, `null`, `[]`): `token` is the
        /// value's text on the key's line, if any.
        case empty(keyLine: Int, keyColumn: Int, token: Span?)
        case block
        /// `devices: [ … ]` with entries.
        case flow(line: Int)
    }

    public init(text: String, file: String) throws(RegistryEditError) {
        self.file = file
        lineEnding = text.contains("\r\n") ? "\r\n" : "\n"
        endsWithNewline = text.hasSuffix("\n")
        var split = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if endsWithNewline || text.isEmpty { split.removeLast() }
        if lineEnding == "\r\n" {
            split = split.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        }
        lines = split
        entries = []

        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw .cannotEdit(SourceLocation(file: file, line: 1, column: 1), reason: "it is not valid YAML")
        }
        guard let root else {
            list = .absent
            return
        }
        guard case .mapping(let top) = root, !Self.isFlow(top.mark, in: lines),
              let (key, value) = top.first(where: { $0.key.scalar?.string == "devices" }) else {
            throw .cannotEdit(Self.location(file, root.mark), reason: "it is not a devices file (expected `devices:` and a list of devices)")
        }
        let keyLine = (key.mark?.line ?? 1) - 1, keyColumn = (key.mark?.column ?? 1) - 1
        switch value {
        case .scalar(let scalar) where scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string):
            var token: Span?
            if let mark = scalar.mark, !scalar.string.isEmpty, mark.line - 1 == keyLine {
                token = Span(line: keyLine, start: mark.column - 1, end: mark.column - 1 + scalar.string.unicodeScalars.count)
            }
            list = .empty(keyLine: keyLine, keyColumn: keyColumn, token: token)
        case .sequence(let sequence) where Self.isFlow(sequence.mark, in: lines):
            let line = (sequence.mark?.line ?? keyLine + 1) - 1
            let characters = lines.indices.contains(line) ? Array(lines[line].unicodeScalars) : []
            if sequence.isEmpty, let mark = sequence.mark, line == keyLine,
               let close = characters.indices.dropFirst(mark.column).first(where: { characters[$0] == "]" }) {
                list = .empty(keyLine: keyLine, keyColumn: keyColumn, token: Span(line: line, start: mark.column - 1, end: close + 1))
            } else if sequence.isEmpty {
                throw .cannotEdit(Self.location(file, sequence.mark), reason: "`devices: []` spans several lines")
            } else {
                list = .flow(line: line)
            }
        case .sequence(let sequence):
            list = .block
            for item in sequence {
                entries.append(try entry(item))
            }
            findSpans()
        default:
            throw .cannotEdit(Self.location(file, value.mark), reason: "devices must be a list")
        }
    }

    /// Whether a collection starting at `mark` is in flow style (`[…]`,
    /// `{…}`). (Yams' composed nodes do not keep their style.)
    private static func isFlow(_ mark: Mark?, in lines: [String]) -> Bool {
        guard let mark, lines.indices.contains(mark.line - 1) else { return false }
        let characters = Array(lines[mark.line - 1].unicodeScalars)
        guard characters.indices.contains(mark.column - 1) else { return false }
        return characters[mark.column - 1] == "[" || characters[mark.column - 1] == "{"
    }

    private static func location(_ file: String, _ mark: Mark?) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    private func entry(_ item: Node) throws(RegistryEditError) -> Entry {
        guard let mark = item.mark, let dash = dashPosition(before: mark) else {
            throw .cannotEdit(Self.location(file, item.mark), reason: "cannot find the '-' of this entry")
        }
        var entry = Entry(dashLine: dash.line, dashColumn: dash.column, lastLine: dash.line, leadingComments: 0)
        guard case .mapping(let mapping) = item else { return entry }
        if !Self.isFlow(mark, in: lines) { entry.keyColumn = mark.column - 1 }
        for (key, value) in mapping {
            switch key.scalar?.string {
            case "id":
                entry.id = value.scalar?.string
            case "disabled":
                if case .scalar(let scalar) = value, let valueMark = scalar.mark {
                    entry.disabled = span(of: scalar, at: valueMark)
                }
            default:
                break
            }
        }
        return entry
    }

    /// The characters of a one-line scalar as written (quotes included).
    private func span(of scalar: Node.Scalar, at mark: Mark) -> Span? {
        let line = mark.line - 1, start = mark.column - 1
        guard lines.indices.contains(line) else { return nil }
        let characters = Array(lines[line].unicodeScalars)
        guard start < characters.count else { return nil }
        switch scalar.style {
        case .plain:
            let end = start + scalar.string.unicodeScalars.count
            guard end <= characters.count, String(String.UnicodeScalarView(characters[start..<end])) == scalar.string else { return nil }
            return Span(line: line, start: start, end: end)
        case .singleQuoted, .doubleQuoted:
            let quote = characters[start]
            guard let close = characters.indices.dropFirst(start + 1).first(where: { characters[$0] == quote }) else { return nil }
            return Span(line: line, start: start, end: close + 1)
        default:
            return nil
        }
    }

    /// The `-` an item follows: back from the item's first character over
    /// spaces (and line breaks, for a `-` alone on its line).
    private func dashPosition(before mark: Mark) -> (line: Int, column: Int)? {
        var line = mark.line - 1
        guard lines.indices.contains(line) else { return nil }
        var column = mark.column - 2
        while line >= 0 {
            let characters = Array(lines[line].unicodeScalars)
            while column >= 0 {
                if characters[column] == "-" { return (line, column) }
                if characters[column] != " " { return nil }
                column -= 1
            }
            line -= 1
            if line >= 0 { column = lines[line].unicodeScalars.count - 1 }
        }
        return nil
    }

    /// Each entry runs to the last line indented deeper than its `-`
    /// before the next line that is not; blank lines and comments at the
    /// `-`'s indentation at its end belong to what follows.
    private mutating func findSpans() {
        var previousEnd = -1
        for index in entries.indices {
            let dash = entries[index].dashColumn
            var line = entries[index].dashLine + 1
            while line < lines.count {
                let text = lines[line]
                if !Self.isBlank(text) && !Self.isComment(text) && Self.indentation(text) <= dash { break }
                line += 1
            }
            var last = line - 1
            while last > entries[index].dashLine,
                  Self.isBlank(lines[last]) || (Self.isComment(lines[last]) && Self.indentation(lines[last]) <= dash) {
                last -= 1
            }
            entries[index].lastLine = last
            var comments = 0
            var above = entries[index].dashLine - 1
            while above > previousEnd, Self.isComment(lines[above]), Self.indentation(lines[above]) == dash {
                comments += 1
                above -= 1
            }
            entries[index].leadingComments = comments
            previousEnd = last
        }
    }

    static func isBlank(_ line: String) -> Bool {
        line.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" }
    }

    static func isComment(_ line: String) -> Bool {
        line.drop { $0 == " " || $0 == "\t" }.hasPrefix("#")
    }

    static func indentation(_ line: String) -> Int {
        line.unicodeScalars.prefix { $0 == " " }.count
    }

    // MARK: Queries

    /// The entries with this id (more than one only in an invalid registry).
    public func entries(id: String) -> [Entry] {
        entries.filter { $0.id == id }
    }

    public var text: String {
        guard !lines.isEmpty else { return "" }
        return lines.joined(separator: lineEnding) + (endsWithNewline ? lineEnding : "")
    }

    private func render(_ lines: [String], forceNewline: Bool = false) -> String {
        guard !lines.isEmpty else { return "" }
        return lines.joined(separator: lineEnding) + (endsWithNewline || forceNewline ? lineEnding : "")
    }

    private func location(of entry: Entry) -> SourceLocation {
        SourceLocation(file: file, line: entry.line, column: entry.dashColumn + 1)
    }

    private func requireEntry(_ id: String) throws(RegistryEditError) -> Entry {
        let found = entries(id: id)
        guard let entry = found.first else {
            throw .cannotEdit(SourceLocation(file: file, line: 1, column: 1), reason: "it has no device '\(id)'")
        }
        guard found.count == 1 else { throw .definedTwice(id, at: found.map(location(of:))) }
        return entry
    }

    private func requireBlockList() throws(RegistryEditError) {
        if case .flow(let line) = list {
            throw .cannotEdit(
                SourceLocation(file: file, line: line + 1, column: 1),
                reason: "its devices are written as a flow list ([…]); write them as a block list (one `- id: …` per device)"
            )
        }
    }

    // MARK: Edits

    /// The text without the entry of `id` (and the comment lines directly
    /// above it). The last entry's removal leaves `devices: []`.
    public func removing(id: String) throws(RegistryEditError) -> String {
        try requireBlockList()
        let entry = try requireEntry(id)
        var start = entry.dashLine - entry.leadingComments
        var end = entry.lastLine + 1  // exclusive
        let isFirst = entries.first?.dashLine == entry.dashLine
        let isLast = entries.last?.dashLine == entry.dashLine
        let blankBefore = start > 0 && Self.isBlank(lines[start - 1])
        let blankAfter = end < lines.count && Self.isBlank(lines[end])
        // Keep one blank line between the neighbours, none at the ends.
        if blankAfter && (blankBefore || isFirst) {
            end += 1
        } else if blankBefore && (isLast || end >= lines.count) {
            start -= 1
        }
        var result = lines
        result.removeSubrange(start..<end)
        if entries.count == 1, case .block = list, let keyLine = devicesKeyLine() {
            // Nothing left under `devices:`: say so, `[]`, rather than null.
            var characters = Array(result[keyLine].unicodeScalars)
            if let colon = characters.indices.first(where: { characters[$0] == ":" }) {
                characters.insert(contentsOf: " []".unicodeScalars, at: colon + 1)
                result[keyLine] = String(String.UnicodeScalarView(characters))
            }
        }
        return render(result)
    }

    /// The line of the `devices:` key of a block list.
    private func devicesKeyLine() -> Int? {
        guard let first = entries.first else { return nil }
        var line = first.dashLine - first.leadingComments - 1
        while line >= 0 {
            if !Self.isBlank(lines[line]) && !Self.isComment(lines[line]) { return line }
            line -= 1
        }
        return nil
    }

    /// The text with `disabled:` of `id` set, or nil if it already is
    /// so. An existing `disabled:` value is replaced in place; otherwise
    /// `disabled: true` is added as the entry's last line, indented as its
    /// keys are.
    public func settingDisabled(_ disabled: Bool, id: String) throws(RegistryEditError) -> String? {
        try requireBlockList()
        let entry = try requireEntry(id)
        let value = disabled ? "true" : "false"
        var result = lines
        if let span = entry.disabled {
            var characters = Array(result[span.line].unicodeScalars)
            let current = String(String.UnicodeScalarView(characters[span.start..<span.end]))
            let isTrue = ["true", "True", "TRUE"].contains(current), isFalse = ["false", "False", "FALSE"].contains(current)
            if (disabled && isTrue) || (!disabled && isFalse) { return nil }
            characters.replaceSubrange(span.start..<span.end, with: value.unicodeScalars)
            result[span.line] = String(String.UnicodeScalarView(characters))
            return render(result)
        }
        guard disabled else { return nil }  // no `disabled:`: enabled already
        guard let keyColumn = entry.keyColumn else {
            throw .cannotEdit(location(of: entry), reason: "device '\(id)' is not a block mapping (one key per line), so `disabled: true` cannot be added to it")
        }
        result.insert(String(repeating: " ", count: keyColumn) + "disabled: true", at: entry.lastLine + 1)
        return render(result)
    }

    /// The text with `device` added as the list's last entry, indented as
    /// the entries before it are (two spaces for the first one).
    public func appending(_ device: NewDevice) throws(RegistryEditError) -> String {
        try requireBlockList()
        var result = lines
        switch list {
        case .absent:
            if let last = result.last, !Self.isBlank(last) { result.append("") }
            result.append("devices:")
            result += device.yamlLines(dashColumn: 2, keyColumn: 4)
        case .empty(let keyLine, let keyColumn, let token):
            if let token {
                var characters = Array(result[token.line].unicodeScalars)
                var start = token.start
                while start > 0 && characters[start - 1] == " " { start -= 1 }
                characters.removeSubrange(start..<token.end)
                result[token.line] = String(String.UnicodeScalarView(characters))
            }
            result.insert(contentsOf: device.yamlLines(dashColumn: keyColumn + 2, keyColumn: keyColumn + 4), at: keyLine + 1)
        case .block:
            guard let last = entries.last else { break }
            let keyColumn = last.keyColumn ?? (last.dashColumn + 2)
            var added = device.yamlLines(dashColumn: last.dashColumn, keyColumn: keyColumn)
            // Entries separated by blank lines get one before the new entry too.
            if entries.count >= 2 {
                let previous = entries[entries.count - 2]
                if previous.lastLine + 1 < lines.count && Self.isBlank(lines[previous.lastLine + 1]) {
                    added.insert("", at: 0)
                }
            }
            result.insert(contentsOf: added, at: last.lastLine + 1)
        case .flow:
            break  // refused above
        }
        return render(result, forceNewline: true)
    }

    /// The text of a new file holding `device` only.
    public static func newFile(with device: NewDevice) -> String {
        (["devices:"] + device.yamlLines(dashColumn: 2, keyColumn: 4)).joined(separator: "\n") + "\n"
    }
}

/// A device to add, as `devices add` writes it: secrets already in their
/// stored form (the PSK as hex of its bytes, the token as its hash).
public struct NewDevice: Sendable, Equatable {
    public var id: String
    public var groups: [String]
    /// Hex of the key's bytes.
    public var pskHex: String?
    public var tokenHash: Digest?
    public var certificateFingerprints: [Digest]
    public var certificateName: String?

    public init(
        id: String, groups: [String] = [], pskHex: String? = nil, tokenHash: Digest? = nil,
        certificateFingerprints: [Digest] = [], certificateName: String? = nil
    ) {
        self.id = id
        self.groups = groups
        self.pskHex = pskHex
        self.tokenHash = tokenHash
        self.certificateFingerprints = certificateFingerprints
        self.certificateName = certificateName
    }

    /// Checks what the loader would refuse in the entry itself.
    public func validate() throws(RegistryEditError) {
        if let problem = DeviceID.problem(id) { throw .invalidID(id, problem: problem) }
        for group in groups {
            if let problem = DeviceID.problem(group) { throw .invalidGroup(group, problem: problem) }
        }
        if let name = certificateName, name.isEmpty || name.unicodeScalars.contains(where: TopicValue.isControl) {
            throw .invalidCertificateName(name)
        }
        if pskHex == nil && tokenHash == nil && certificateFingerprints.isEmpty && certificateName == nil {
            throw .noCredential
        }
    }

    /// The hex the registry stores for a PSK given as text (as
    /// `coap-client -k` takes it): the hex of its UTF-8 bytes.
    public static func pskHex(forKeyText key: String) -> String {
        Hex.encode(Array(key.utf8))
    }

    /// The entry's lines: `- id: …` at `dashColumn`, the other keys at `keyColumn`.
    func yamlLines(dashColumn: Int, keyColumn: Int) -> [String] {
        let gap = max(1, keyColumn - dashColumn - 1)
        let indent = String(repeating: " ", count: dashColumn + 1 + gap)
        var lines = [String(repeating: " ", count: dashColumn) + "-" + String(repeating: " ", count: gap) + "id: " + YAMLText.scalar(id)]
        if !groups.isEmpty {
            lines.append(indent + "groups: [" + groups.map(YAMLText.scalar).joined(separator: ", ") + "]")
        }
        if let pskHex { lines.append(indent + "psk: " + pskHex) }
        if let tokenHash { lines.append(indent + "token_sha256: " + tokenHash.hex) }
        if certificateFingerprints.count == 1 {
            lines.append(indent + "cert_sha256: " + certificateFingerprints[0].hex)
        } else if certificateFingerprints.count > 1 {
            lines.append(indent + "cert_sha256:")
            lines += certificateFingerprints.map { indent + "  - " + $0.hex }
        }
        if let certificateName { lines.append(indent + "cert_name: " + YAMLText.scalar(certificateName)) }
        return lines
    }
}

/// Writing YAML scalars that read back as the same string.
enum YAMLText {
    private static let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"]

    /// Plain when that is unambiguous, double-quoted otherwise.
    static func scalar(_ text: String) -> String {
        let plainCharacters = text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "-_./".unicodeScalars.contains($0)
        }
        let startsWithLetter = text.unicodeScalars.first.map { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || $0 == "_" } ?? false
        if plainCharacters && startsWithLetter && !reserved.contains(text.lowercased()) { return text }
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }
}
