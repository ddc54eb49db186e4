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
    public static func load(path: String, loadingRegistry: Bool = true) throws(ConfigError) -> GatewayConfig {
        let issues = IssueList()
        let absolute = FilePaths.absolute(path)
        guard let file = YAMLFile.load(absolute, issues: issues, reportedAs: path) else {
            throw ConfigError(issues: issues.issues)
        }
        let reader = NodeReader(file: path, issues: issues)
        let base = (absolute as NSString).deletingLastPathComponent
        guard let root = file.root else {
            issues.add("configuration is empty", at: SourceLocation(file: path, line: 1, column: 1))
            throw ConfigError(issues: issues.issues)
        }
        guard let top = reader.mapping(root, what: "the configuration", allowed: topLevelKeys) else {
            throw ConfigError(issues: issues.issues)
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

        // Mappings are checked against the broker's limits; if the upstream
        // section itself is broken, against the default profile's.
        var compiler = MappingCompiler(issues: issues, limits: upstream?.limits ?? .awsIotCore, gateway: gateway?.name ?? "x")
        if let inline = top["mappings"] {
            compiler.compileList(inline, reader: reader)
        }
        if let patterns = top["mapping_files"], let list = reader.stringList(patterns, what: "mapping_files") {
            for mappingFile in MappingFiles.expand(list, baseDirectory: base, reader: reader) {
                compiler.compileFile(mappingFile)
            }
        }

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
            throw ConfigError(issues: issues.issues)
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
}

enum FilePaths {
    static func absolute(_ path: String) -> String {
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
