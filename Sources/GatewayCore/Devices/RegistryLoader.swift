import Foundation
import Yams

/// The `devices:` section: where the registry lives and how failures are throttled.
public struct DeviceSettings: Sendable, Equatable {
    /// Glob patterns of registry files, absolute.
    public var files: [String]
    /// CA that signs device certificates (DTLS and HTTPS client certificates).
    public var caFile: String?
    /// Where `ca_file` is written, for diagnostics.
    public var caFileLocation: SourceLocation?
    public var failureLimit: FailureLimit

    public init(files: [String] = [], caFile: String? = nil, failureLimit: FailureLimit = FailureLimit()) {
        self.files = files
        self.caFile = caFile
        self.failureLimit = failureLimit
    }

    /// No registry configured: every `auth: device` mapping refuses.
    public var isConfigured: Bool { !files.isEmpty }
}

/// A loaded registry and what about it is worth a warning.
public struct LoadedRegistry: Sendable {
    public var registry: DeviceRegistry
    /// The files read, for reload checks.
    public var files: [String]
    public var warnings: [ConfigIssue]
}

/// Reads the registry files a `devices.files` list names. Every problem is
/// reported with its `FILE:LINE:COLUMN`; a registry with any problem is not
/// used (at start the gateway refuses to run, on reload it keeps the old one).
public enum RegistryLoader {
    static let entryKeys = ["id", "groups", "disabled", "psk", "token_sha256", "cert_sha256", "cert_name"]

    /// Loads the registry named by `settings.files`.
    public static func load(_ settings: DeviceSettings) throws(ConfigError) -> LoadedRegistry {
        let issues = IssueList()
        let loaded = load(patterns: settings.files.map { ($0, nil) }, issues: issues, reader: nil)
        guard issues.isEmpty else { throw ConfigError(issues: issues.issues) }
        return LoadedRegistry(registry: loaded.registry, files: loaded.files, warnings: issues.warnings)
    }

    /// The files a set of patterns matches now, sorted, each once (a
    /// pattern without wildcards only if that file exists).
    public static func files(_ patterns: [String]) -> [String] {
        Array(Set(patterns.flatMap(matches))).sorted()
    }

    private static func matches(_ pattern: String) -> [String] {
        if Glob.hasWildcard(pattern) { return Glob.paths(pattern) }
        return FileManager.default.fileExists(atPath: pattern) ? [pattern] : []
    }

    /// Shared with the configuration loader: `patterns` carry the node that
    /// names them (when read from the configuration) so a missing file is
    /// reported there.
    static func load(
        patterns: [(String, Node?)], issues: IssueList, reader: NodeReader?
    ) -> (registry: DeviceRegistry, files: [String]) {
        var files: Set<String> = []
        for (pattern, node) in patterns {
            let matches = matches(pattern)
            if matches.isEmpty {
                let message = Glob.hasWildcard(pattern)
                    ? "devices.files: '\(FilePaths.display(pattern))' matches no file yet; no device can authenticate until one is added"
                    : "devices.files: '\(FilePaths.display(pattern))' does not exist"
                let location = node.flatMap { n in reader.map { $0.location(n) } }
                    ?? SourceLocation(file: FilePaths.display(pattern), line: 1, column: 1)
                if Glob.hasWildcard(pattern) {
                    issues.warn(message, at: location)
                } else {
                    issues.add(message, at: location)
                }
            }
            files.formUnion(matches)
        }
        var builder = RegistryBuilder(issues: issues)
        let sorted = files.sorted()
        for file in sorted { builder.read(file) }
        return (DeviceRegistry(validated: builder.devices), sorted)
    }
}

/// Reads registry files one after another, checking each entry and the
/// uniqueness of ids and credentials across all of them.
struct RegistryBuilder {
    let issues: IssueList
    private(set) var devices: [Device] = []
    private var ids: [String: SourceLocation] = [:]
    private var tokens: [Digest: String] = [:]
    private var fingerprints: [Digest: String] = [:]
    private var certificateNames: [String: String] = [:]

    init(issues: IssueList) {
        self.issues = issues
    }

    mutating func read(_ path: String) {
        let shown = FilePaths.display(path)
        guard let file = YAMLFile.load(path, issues: issues, reportedAs: shown) else { return }
        let reader = NodeReader(file: shown, issues: issues)
        guard let root = file.root else { return }  // an empty file registers nobody
        guard let top = reader.mapping(root, what: "a devices file", allowed: ["devices"]) else { return }
        guard let list = top.required("devices", in: "a devices file") else { return }
        if reader.isNull(list) { return }
        guard let entries = reader.sequence(list, what: "devices") else { return }
        let othersMayRead = Self.othersMayRead(path)
        for entry in entries {
            if let device = device(from: entry, reader: reader, othersMayRead: othersMayRead) {
                devices.append(device)
            }
        }
    }

    private mutating func device(from node: Node, reader: NodeReader, othersMayRead: String?) -> Device? {
        guard let entries = reader.mapping(node, what: "a device", allowed: RegistryLoader.entryKeys) else { return nil }
        var ok = true
        var id: String?
        if let value = entries.required("id", in: "a device"), let text = reader.string(value, what: "id") {
            if let problem = DeviceID.problem(text) {
                reader.fail("device id '\(Router.shorten(text))' \(problem)", at: value)
            } else if let first = ids[text] {
                reader.fail("duplicate device id '\(text)' (first defined at \(first))", at: value)
            } else {
                ids[text] = reader.location(value)
                id = text
            }
        }
        let name = id ?? "?"

        var groups: [String] = []
        if let value = entries["groups"], let list = reader.stringList(value, what: "groups") {
            for (group, item) in list {
                if let problem = DeviceID.problem(group) {
                    reader.fail("group '\(Router.shorten(group))' \(problem)", at: item)
                    ok = false
                } else if !groups.contains(group) {
                    groups.append(group)
                }
            }
        }

        var disabled = false
        if let value = entries["disabled"] {
            if let flag = reader.bool(value, what: "disabled") { disabled = flag } else { ok = false }
        }

        var psk: [UInt8]?
        if let value = entries["psk"], let text = reader.string(value, what: "psk") {
            if let bytes = Hex.decode(text), (1...64).contains(bytes.count) {
                psk = bytes
            } else {
                reader.fail("psk of device '\(name)' must be 2 to 128 hex digits (1 to 64 bytes)", at: value)
                ok = false
            }
            if let mode = othersMayRead {
                reader.fail("this file holds a pre-shared key but every user may read it (mode \(mode)); chmod 600 it", at: value)
                ok = false
            }
        }

        var tokenHash: Digest?
        if let value = entries["token_sha256"], let text = reader.string(value, what: "token_sha256") {
            if let digest = Digest(hex: text) {
                if let owner = tokens[digest] {
                    reader.fail("device '\(name)' has the same token as device '\(owner)'", at: value)
                    ok = false
                } else {
                    tokens[digest] = name
                    tokenHash = digest
                }
            } else {
                reader.fail("token_sha256 of device '\(name)' must be 64 hex digits (a SHA-256)", at: value)
                ok = false
            }
        }

        var certificateFingerprints: [Digest] = []
        if let value = entries["cert_sha256"], let list = reader.stringList(value, what: "cert_sha256") {
            for (text, item) in list {
                guard let digest = Digest(hex: text) else {
                    reader.fail("cert_sha256 of device '\(name)' must be a SHA-256 fingerprint: 64 hex digits, ':' between pairs allowed", at: item)
                    ok = false
                    continue
                }
                if let owner = fingerprints[digest] {
                    reader.fail("certificate fingerprint already belongs to device '\(owner)'", at: item)
                    ok = false
                } else {
                    fingerprints[digest] = name
                    certificateFingerprints.append(digest)
                }
            }
        }

        var certificateName: String?
        if let value = entries["cert_name"], let text = reader.string(value, what: "cert_name") {
            if text.isEmpty || text.unicodeScalars.contains(where: TopicValue.isControl) {
                reader.fail("cert_name of device '\(name)' must be a non-empty name without control characters", at: value)
                ok = false
            } else if let owner = certificateNames[text] {
                reader.fail("cert_name '\(text)' already belongs to device '\(owner)'", at: value)
                ok = false
            } else {
                certificateNames[text] = name
                certificateName = text
            }
        }

        guard ok, let id else { return nil }
        if psk == nil && tokenHash == nil && certificateFingerprints.isEmpty && certificateName == nil {
            reader.warn("device '\(id)' has no credentials (psk, token_sha256, cert_sha256 or cert_name): it cannot authenticate", at: node)
        }
        return Device(
            id: id, groups: groups, disabled: disabled, psk: psk, tokenHash: tokenHash,
            certificateFingerprints: certificateFingerprints, certificateName: certificateName,
            location: reader.location(node)
        )
    }

    /// The file's mode when users other than its owner and group may read
    /// it, nil otherwise (or when it cannot be checked).
    static func othersMayRead(_ path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IROTH != 0 else { return nil }
        return String(status.st_mode & 0o777, radix: 8)
    }
}
