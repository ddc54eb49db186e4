import Foundation

/// Which registry file a new device goes into, and whether a file belongs
/// to the registry at all.
public enum RegistryTarget {
    /// `explicit` (`--file`, absolute) if given; else the first pattern if
    /// it names one file; else, for `DIR/*.EXT`, the device's own file
    /// `DIR/ID.EXT`. The file must be one `patterns` match, or the gateway
    /// would never read it.
    public static func file(forNewDevice id: String, explicit: String?, patterns: [String]) throws(RegistryEditError) -> String {
        guard let first = patterns.first else { throw .notConfigured }
        if let explicit {
            guard matches(explicit, patterns: patterns) else { throw .fileNotInRegistry(explicit, patterns: patterns) }
            return explicit
        }
        if !Glob.hasWildcard(first) { return first }
        let directory = (first as NSString).deletingLastPathComponent
        let name = (first as NSString).lastPathComponent
        let fileExtension = String(name.dropFirst(2))
        guard name.hasPrefix("*."), !fileExtension.isEmpty, !Glob.hasWildcard(fileExtension), !Glob.hasWildcard(directory) else {
            throw .needsFile(id: id, pattern: first)
        }
        let path = (directory as NSString).appendingPathComponent("\(id).\(fileExtension)")
        guard matches(path, patterns: patterns) else { throw .needsFile(id: id, pattern: first) }
        return path
    }

    /// Whether one of `patterns` names or matches `path` (both absolute),
    /// as glob(3) would: `*` stops at '/', and skips names starting with '.'.
    public static func matches(_ path: String, patterns: [String]) -> Bool {
        patterns.contains { pattern in
            Glob.hasWildcard(pattern) ? fnmatch(pattern, path, FNM_PATHNAME | FNM_PERIOD) == 0 : pattern == path
        }
    }

    /// Whether a pattern names `path` itself (no wildcard): such a file
    /// must exist, so it is emptied rather than deleted.
    public static func isNamedLiterally(_ path: String, patterns: [String]) -> Bool {
        patterns.contains { !Glob.hasWildcard($0) && $0 == path }
    }
}

extension RegistryTarget {
    /// A path given on the command line, absolute and standardized as the
    /// configuration's paths are (relative to the working directory).
    public static func absolute(_ path: String) -> String {
        FilePaths.absolute(path)
    }

    /// How a path is shown in messages: relative to the working directory
    /// when inside it, as the registry loader shows it.
    public static func display(_ path: String) -> String {
        FilePaths.display(path)
    }
}
