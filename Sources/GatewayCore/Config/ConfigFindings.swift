/// A PEM file the configuration names, and where.
struct PEMFileReference {
    /// `upstream.tls.cert_file`, `devices.ca_file`, ...
    var key: String
    var path: String
    /// The path as written, for messages.
    var written: String
    var location: SourceLocation
}

/// Listen addresses and files as found while the sections were parsed.
/// Reference type: `SectionParser` is a value passed around by copy, and all
/// copies must add to one list.
final class ConfigFindings {
    var listeners: [(key: String, address: ListenAddress, location: SourceLocation)] = []
    var files: [String: PEMFileReference] = [:]
}
