import Foundation
import Yams

/// Reads a configuration file (and the mapping files it names) into a
/// validated `GatewayConfig`, or every problem found, each with its
/// `FILE:LINE:COLUMN`.
public enum ConfigLoader {
    static let topLevelKeys = ["gateway", "upstream", "devices", "coap", "http", "outbox", "admin", "log", "mapping_files", "mappings"]

    /// `loadingRegistry: false` leaves the device registry files unread
    /// (`registry` stays empty): the `devices` commands read and check them
    /// themselves, and must work while a registry file is missing or broken.
    /// `${NAME}` references in the configuration and its mapping files are
    /// resolved from `environment`; certificates are judged against `now`.
    public static func load(
        path: String,
        loadingRegistry: Bool = true,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        now: Date = Date()
    ) throws(ConfigError) -> GatewayConfig {
        let issues = IssueList()
        let absolute = FilePaths.absolute(path)
        guard let file = YAMLFile.load(absolute, issues: issues, reportedAs: path, environment: environment) else {
            throw issues.failure
        }
        let reader = NodeReader(file: path, issues: issues)
        let base = (absolute as NSString).deletingLastPathComponent
        guard let root = file.root else {
            issues.add("configuration is empty", at: SourceLocation(file: path, line: 1, column: 1))
            throw issues.failure
        }
        guard let top = reader.mapping(root, what: "the configuration", allowed: topLevelKeys) else {
            throw issues.failure
        }
        let sections = SectionParser(reader: reader, baseDirectory: base)

        let gateway = sections.gateway(top.required("gateway", in: "the configuration"))
        let upstream = sections.upstream(top.required("upstream", in: "the configuration"), gatewayName: gateway?.name)
        let devices = sections.devices(top["devices"])
        let coap = sections.coap(top["coap"], devices: devices ?? DeviceSettings())
        let http = sections.http(top["http"], devices: devices ?? DeviceSettings())
        let outbox = sections.outbox(top["outbox"])
        let admin = sections.admin(top["admin"])
        let log = sections.log(top["log"])
        if let coap, let http, let admin {
            ListenerChecks(issues: issues, configFile: path).check(listeners(coap: coap, http: http, admin: admin, found: sections.found))
        }
        CertificateChecks(issues: issues, now: now).check(sections.found.files)

        // Mappings are checked against the broker's limits; if the upstream
        // section itself is broken, against the default profile's.
        var compiler = MappingCompiler(
            issues: issues, limits: upstream?.limits ?? .awsIotCore, gateway: gateway?.name ?? "x", environment: environment
        )
        if let inline = top["mappings"] {
            compiler.compileList(inline, reader: reader)
        }
        if let patterns = top["mapping_files"], let list = reader.stringList(patterns, what: "mapping_files") {
            for mappingFile in MappingFiles.expand(list, baseDirectory: base, reader: reader) {
                compiler.compileFile(mappingFile)
            }
        }
        MappingShadowing(issues: issues).check(compiler.rules, resourceLocations: compiler.resourceLocations)

        if compiler.rules.isEmpty && issues.isEmpty {
            // Not an error: a gateway may be started before its mappings are written.
            issues.warn(
                "no mappings: add `mappings:` or `mapping_files:` (every request would be answered 4.04)",
                at: SourceLocation(file: path, line: 1, column: 1)
            )
        }

        var registry = DeviceRegistry.empty
        if loadingRegistry, let devices, let node = top["devices"] {
            registry = sections.registry(devices, section: node)
        }

        guard issues.isEmpty, let gateway, let upstream, let devices, let coap, let http, let outbox, let admin, let log else {
            throw issues.failure
        }
        SecurityChecks(issues: issues).check(mappings: compiler.rules, devices: devices, coap: coap, http: http)
        var config = GatewayConfig(
            file: absolute,
            gateway: gateway,
            upstream: upstream,
            coap: coap,
            http: http,
            outbox: outbox,
            admin: admin,
            log: log,
            mappings: compiler.rules,
            warnings: []
        )
        config.devices = devices
        config.registry = registry
        config.warnings = issues.warnings
        return config
    }

    /// Every listen address in use, defaults included, in the order the
    /// gateway binds them, each with where it was written.
    static func listeners(coap: CoAPSettings, http: HTTPSettings, admin: AdminSettings, found: ConfigFindings) -> [ConfiguredListener] {
        let groups: [(String, [ListenAddress], ConfiguredListener.Transport)] = [
            ("admin.listen", admin.listen, .tcp),
            ("coap.listen", coap.listen, .udp),
            ("coap.dtls.listen", coap.dtls.listen, .udp),
            ("http.listen", http.listen, .tcp),
            ("http.tls.listen", http.tls?.listen ?? [], .tcp),
        ]
        return groups.flatMap { key, addresses, transport in
            addresses.map { address in
                let location = found.listeners.first { $0.key == key && $0.address == address }?.location
                return ConfiguredListener(address: address, key: key, transport: transport, location: location)
            }
        }
    }
}

public enum FilePaths {
    /// `path` made absolute against the working directory, and standardized.
    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return (path as NSString).standardizingPath }
        let cwd = FileManager.default.currentDirectoryPath
        return ((cwd as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }

    /// Resolves `path` against the directory of the file that names it.
    static func resolve(_ path: String, against base: String) -> String {
        if path.hasPrefix("/") { return (path as NSString).standardizingPath }
        return ((base as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }

    /// How to show an absolute path in a message: relative to the working
    /// directory when it is inside it, as the operator probably typed it.
    static func display(_ absolute: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        let prefix = cwd.hasSuffix("/") ? cwd : cwd + "/"
        return absolute.hasPrefix(prefix) ? String(absolute.dropFirst(prefix.count)) : absolute
    }
}

/// Expands `mapping_files` globs into files, sorted, each once.
enum MappingFiles {
    static func expand(_ patterns: [(String, Node)], baseDirectory: String, reader: NodeReader) -> [String] {
        var files: Set<String> = []
        for (pattern, node) in patterns {
            let absolute = FilePaths.resolve(pattern, against: baseDirectory)
            let hasWildcard = Glob.hasWildcard(pattern)
            let matches = Glob.paths(absolute)
            if matches.isEmpty && !hasWildcard {
                reader.fail("mapping file '\(pattern)' does not exist", at: node)
            } else if matches.isEmpty {
                reader.warn("mapping_files pattern '\(pattern)' matches no file (looked for \(absolute))", at: node)
            }
            files.formUnion(matches)
        }
        return files.sorted()
    }

}

/// File name patterns, through the C library's glob(3).
enum Glob {
    static func hasWildcard(_ pattern: String) -> Bool {
        pattern.contains(where: { "*?[".contains($0) })
    }

    /// The existing paths that match, sorted.
    static func paths(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in
            result.gl_pathv[index].map { String(cString: $0) }
        }.sorted()
    }
}

extension ConfigLoader {
    /// Only `gateway.state_dir` (absolute; the default when it is not set),
    /// for the `queue` commands: they must work while the rest of the
    /// configuration is broken (unreadable certificates, missing mapping
    /// files, an unset variable elsewhere), which is when they are needed.
    /// The file must still be YAML, and `state_dir` a string.
    public static func stateDirectory(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> String {
        let issues = IssueList()
        let absolute = FilePaths.absolute(path)
        guard let file = YAMLFile.load(absolute, issues: issues, reportedAs: path) else { throw issues.failure }
        let reader = NodeReader(file: path, issues: issues)
        guard case .mapping(let top)? = file.root, case .mapping(let gateway)? = top["gateway"], var node = gateway["state_dir"] else {
            return SectionParser.defaultStateDirectory
        }
        if let text = file.text {
            node = EnvironmentReferences(environment: environment, source: text, file: path, issues: issues).resolve(node)
        }
        guard issues.isEmpty, let text = reader.string(node, what: "gateway.state_dir") else { throw issues.failure }
        return FilePaths.resolve(text, against: (absolute as NSString).deletingLastPathComponent)
    }
}
