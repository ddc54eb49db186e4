/// What an `iot-gateway devices …` command could not do, and what to do about it.
public enum RegistryEditError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration has no `devices.files`.
    case notConfigured
    case invalidID(String, problem: String)
    case invalidGroup(String, problem: String)
    case invalidFingerprint(String)
    case invalidCertificateName(String)
    /// `add` without any credential option.
    case noCredential
    /// `add` of an id the registry already has.
    case duplicateID(String, at: SourceLocation)
    /// `disable`, `enable` or `remove` of an id no registry file has.
    case unknownID(String, patterns: [String])
    /// The id is in the registry more than once (an invalid registry).
    case definedTwice(String, at: [SourceLocation])
    /// No `--file`, and the first `devices.files` pattern names no single file.
    case needsFile(id: String, pattern: String)
    /// `--file` names a file `devices.files` does not match.
    case fileNotInRegistry(String, patterns: [String])
    /// The file is written in a way line edits cannot change safely.
    case cannotEdit(SourceLocation, reason: String)
    /// The change would leave the registry invalid (`preexisting`: the
    /// problems were there before it); nothing was changed.
    case invalidRegistry([ConfigIssue], preexisting: Bool)
    case io(path: String, action: String, reason: String)
    /// Another `devices` command kept the lock too long.
    case lockTimeout(String)

    public var description: String {
        switch self {
        case .notConfigured:
            return "the configuration has no device registry: add `devices: {files: [\"devices/*.yaml\"]}` to it (paths relative to the configuration file)"
        case .invalidID(let id, let problem):
            return "device id '\(id)' \(problem)"
        case .invalidGroup(let group, let problem):
            return "group '\(group)' \(problem)"
        case .invalidFingerprint(let text):
            return "--cert-sha256 '\(text)' is not a SHA-256 fingerprint: give 64 hex digits, ':' between pairs allowed (openssl x509 -noout -fingerprint -sha256 -in CERT)"
        case .invalidCertificateName(let name):
            return "--cert-name '\(name)' must be a non-empty name without control characters"
        case .noCredential:
            return "give the device at least one credential: --psk (CoAP over DTLS), --token (HTTPS), --cert-sha256 FINGERPRINT or --cert-name NAME (client certificates)"
        case .duplicateID(let id, let location):
            return "device '\(id)' already exists at \(location.file):\(location.line); choose another id, or remove it first (iot-gateway devices remove \(id))"
        case .unknownID(let id, let patterns):
            return "no device '\(id)' in the registry (devices.files: \(Self.list(patterns))); `iot-gateway devices list` shows the registered ids"
        case .definedTwice(let id, let locations):
            let places = locations.map { "\($0.file):\($0.line)" }.joined(separator: ", ")
            return "device '\(id)' is defined more than once (\(places)); remove the extra entries by hand"
        case .needsFile(let id, let pattern):
            return "devices.files' first pattern '\(FilePaths.display(pattern))' names neither one file nor DIR/*.EXT, so there is no file to put device '\(id)' in: give one with --file PATH"
        case .fileNotInRegistry(let path, let patterns):
            return "'\(FilePaths.display(path))' is not matched by devices.files (\(Self.list(patterns))): the gateway would never read it; choose a file those patterns match"
        case .cannotEdit(let location, let reason):
            return "\(location): cannot edit this file: \(reason); edit it by hand"
        case .invalidRegistry(let issues, let preexisting):
            let summary = preexisting
                ? "the registry already has these problems; fix them first (nothing was changed)"
                : "the change would make the registry invalid, so nothing was changed"
            return (issues.map(\.description) + [summary]).joined(separator: "\n")
        case .io(let path, let action, let reason):
            return "cannot \(action) '\(FilePaths.display(path))': \(reason)"
        case .lockTimeout(let path):
            return "another `iot-gateway devices` command has held '\(FilePaths.display(path))' for 30 s; try again"
        }
    }

    private static func list(_ patterns: [String]) -> String {
        patterns.map { FilePaths.display($0) }.joined(separator: ", ")
    }
}
