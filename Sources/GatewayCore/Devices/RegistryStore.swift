import Foundation

/// What a registry edit did.
public struct RegistryChange: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case created, updated, deleted
        /// Already as asked (e.g. disabling a disabled device).
        case unchanged
    }

    /// Absolute path of the file written, deleted or left alone.
    public var file: String
    public var kind: Kind
    /// The entry's line in the file afterwards, when it is still there.
    public var line: Int?
}

/// Edits the registry files `devices.files` names, safely against the
/// running gateway and against other `devices` commands:
///
/// - every edit runs under an exclusive `flock` of `.iot-gateway-devices.lock`
///   in each directory involved (taken in sorted order), and reads the files
///   only once it holds them, so concurrent edits cannot lose each other's;
/// - a new file content goes to a temporary file in the same directory
///   (fsynced), the whole registry is loaded with it in place of the old
///   one, and only if that is valid is it renamed over the old file (then
///   the directory is fsynced); otherwise it is removed and nothing changed;
/// - files are created mode 0600 (directories 0700); a replaced file keeps
///   its mode, and, when run as root, its owner and group (a new one takes
///   its directory's), so the gateway's user can still read it.
public struct RegistryStore: Sendable {
    public static let lockFileName = ".iot-gateway-devices.lock"

    /// Absolute glob patterns, as `DeviceSettings.files`.
    public let patterns: [String]

    public init(patterns: [String]) throws(RegistryEditError) {
        guard !patterns.isEmpty else { throw .notConfigured }
        self.patterns = patterns
    }

    // MARK: Operations

    /// Adds `device` to `file` (creating it if needed); refuses an id the
    /// registry already has.
    public func add(_ device: NewDevice, to file: String) throws(RegistryEditError) -> RegistryChange {
        try device.validate()
        guard RegistryTarget.matches(file, patterns: patterns) else { throw .fileNotInRegistry(file, patterns: patterns) }
        try Self.makeDirectories((file as NSString).deletingLastPathComponent)
        return try transaction(also: file) { snapshot throws(RegistryEditError) in
            if let (path, entry) = snapshot.find(device.id).first {
                throw .duplicateID(device.id, at: SourceLocation(file: FilePaths.display(path), line: entry.line, column: 1))
            }
            if let document = try snapshot.document(file, patterns: patterns) {
                return .write(file, try document.appending(device), id: device.id)
            }
            return .write(file, RegistryDocument.newFile(with: device), id: device.id)
        }
    }

    /// Sets `disabled:` of device `id`.
    public func setDisabled(_ disabled: Bool, id: String) throws(RegistryEditError) -> RegistryChange {
        try transaction(also: nil) { snapshot throws(RegistryEditError) in
            let (path, document) = try snapshot.owner(of: id, patterns: patterns)
            guard let text = try document.settingDisabled(disabled, id: id) else {
                return .unchanged(path, line: document.entries(id: id).first?.line)
            }
            return .write(path, text, id: id)
        }
    }

    /// Removes device `id`. A file left with no device is deleted, unless
    /// `devices.files` names it literally (it must exist): that one keeps
    /// `devices: []`.
    public func remove(id: String) throws(RegistryEditError) -> RegistryChange {
        try transaction(also: nil) { snapshot throws(RegistryEditError) in
            let (path, document) = try snapshot.owner(of: id, patterns: patterns)
            if document.entries.count == 1 && !RegistryTarget.isNamedLiterally(path, patterns: patterns) {
                return .delete(path)
            }
            return .write(path, try document.removing(id: id), id: nil)
        }
    }

    /// The registry's problems as it is on disk now (empty: valid).
    public func problems() -> [ConfigIssue] {
        Self.check(patterns: patterns, substitutes: [:])
    }

    // MARK: Transactions

    enum Plan {
        /// New content for a file; `id` is the entry whose line to report.
        case write(String, String, id: String?)
        case delete(String)
        case unchanged(String, line: Int?)
    }

    /// The registry files as read under the locks.
    struct Snapshot {
        var files: [String]
        var documents: [String: Result<RegistryDocument, RegistryEditError>]

        /// Every entry with this id, in file order.
        func find(_ id: String) -> [(String, RegistryDocument.Entry)] {
            files.flatMap { file -> [(String, RegistryDocument.Entry)] in
                guard case .success(let document)? = documents[file] else { return [] }
                return document.entries(id: id).map { (file, $0) }
            }
        }

        /// The parsed file, nil if it does not exist; a file that cannot
        /// be edited is reported with the registry's current problems.
        func document(_ file: String, patterns: [String]) throws(RegistryEditError) -> RegistryDocument? {
            guard let result = documents[file] else { return nil }
            switch result {
            case .success(let document): return document
            case .failure(let error): throw Self.explain(error, patterns: patterns)
            }
        }

        /// The one file holding `id`.
        func owner(of id: String, patterns: [String]) throws(RegistryEditError) -> (String, RegistryDocument) {
            let found = find(id)
            guard let (path, _) = found.first else {
                // It may be in a file that cannot be read: say what is wrong there.
                if let failure = files.lazy.compactMap({ file -> RegistryEditError? in
                    if case .failure(let error)? = documents[file] { return error }
                    return nil
                }).first {
                    throw Self.explain(failure, patterns: patterns)
                }
                throw .unknownID(id, patterns: patterns)
            }
            guard found.count == 1 else {
                throw .definedTwice(id, at: found.map { SourceLocation(file: FilePaths.display($0.0), line: $0.1.line, column: 1) })
            }
            guard case .success(let document)? = documents[path] else { throw .unknownID(id, patterns: patterns) }
            return (path, document)
        }

        /// A file that does not parse: the loader's located problems say
        /// more than "cannot edit".
        private static func explain(_ error: RegistryEditError, patterns: [String]) -> RegistryEditError {
            guard case .cannotEdit = error else { return error }
            let issues = RegistryStore.check(patterns: patterns, substitutes: [:])
            return issues.isEmpty ? error : .invalidRegistry(issues, preexisting: true)
        }
    }

    /// Takes the locks, reads the files, asks `body` what to change, and
    /// applies it if the registry stays valid.
    private func transaction(
        also extra: String?, _ body: (Snapshot) throws(RegistryEditError) -> Plan
    ) throws(RegistryEditError) -> RegistryChange {
        var directories = Set(RegistryLoader.files(patterns).map { ($0 as NSString).deletingLastPathComponent })
        if let extra { directories.insert((extra as NSString).deletingLastPathComponent) }
        let locks = try DirectoryLocks(directories: directories.sorted())
        defer { locks.release() }

        let files = RegistryLoader.files(patterns)
        var documents: [String: Result<RegistryDocument, RegistryEditError>] = [:]
        for file in files {
            documents[file] = Result { () throws(RegistryEditError) in
                let text = try Self.read(file)
                return try RegistryDocument(text: text, file: FilePaths.display(file))
            }
        }
        switch try body(Snapshot(files: files, documents: documents)) {
        case .unchanged(let file, let line):
            return RegistryChange(file: file, kind: .unchanged, line: line)
        case .delete(let file):
            let issues = Self.check(patterns: patterns, substitutes: [file: .deleted])
            guard issues.isEmpty else { throw refusal(issues) }
            guard unlink(file) == 0 else { throw .io(path: file, action: "delete", reason: Self.errnoText()) }
            Self.syncDirectory(of: file)
            return RegistryChange(file: file, kind: .deleted, line: nil)
        case .write(let file, let text, let id):
            let existed = FileManager.default.fileExists(atPath: file)
            // A symlinked registry file (configuration management) stays a
            // link: the file it points to is replaced.
            let destination = Self.followingSymlink(file)
            let temporary = try Self.writeTemporary(text, for: destination)
            let issues = Self.check(patterns: patterns, substitutes: [file: .content(temporary)])
            guard issues.isEmpty else {
                unlink(temporary)
                throw refusal(issues)
            }
            guard rename(temporary, destination) == 0 else {
                let reason = Self.errnoText()
                unlink(temporary)
                throw .io(path: destination, action: "replace", reason: reason)
            }
            Self.syncDirectory(of: destination)
            let line = id.flatMap { id in
                (try? RegistryDocument(text: text, file: file))?.entries(id: id).first?.line
            }
            return RegistryChange(file: file, kind: existed ? .updated : .created, line: line)
        }
    }

    private func refusal(_ issues: [ConfigIssue]) -> RegistryEditError {
        .invalidRegistry(issues, preexisting: !problems().isEmpty)
    }

    // MARK: Checking

    enum Substitute {
        /// Read this (temporary) file instead.
        case content(String)
        case deleted
    }

    /// The registry's problems with some files replaced or gone, as the
    /// gateway's loader reports them (the replaced files under their own names).
    static func check(patterns: [String], substitutes: [String: Substitute]) -> [ConfigIssue] {
        let issues = IssueList()
        var files = Set(RegistryLoader.files(patterns))
        for (file, substitute) in substitutes {
            switch substitute {
            case .content: files.insert(file)
            case .deleted: files.remove(file)
            }
        }
        for pattern in patterns where !Glob.hasWildcard(pattern) && !files.contains(pattern) {
            issues.add("devices.files: '\(FilePaths.display(pattern))' does not exist",
                       at: SourceLocation(file: FilePaths.display(pattern), line: 1, column: 1))
        }
        var renamed: [String: String] = [:]
        var builder = RegistryBuilder(issues: issues)
        for file in files.sorted() {
            if case .content(let temporary)? = substitutes[file] {
                renamed[FilePaths.display(temporary)] = FilePaths.display(file)
                builder.read(temporary)
            } else {
                builder.read(file)
            }
        }
        return issues.issues.map { issue in
            var issue = issue
            if let name = renamed[issue.location.file] { issue.location.file = name }
            return issue
        }
    }

    // MARK: Files

    /// The file a symlink points to, or `path` itself.
    static func followingSymlink(_ path: String) -> String {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFLNK, let resolved = realpath(path, nil) else {
            return path
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func read(_ file: String) throws(RegistryEditError) -> String {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .io(path: file, action: "read", reason: access(file, R_OK) == 0 ? "read error" : errnoText())
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .cannotEdit(SourceLocation(file: FilePaths.display(file), line: 1, column: 1), reason: "it is not UTF-8")
        }
        return text
    }

    /// Writes `text` to a new temporary file next to `file`, fsynced, with
    /// the mode (and as root the owner) the final file is to have.
    static func writeTemporary(_ text: String, for file: String) throws(RegistryEditError) -> String {
        let directory = (file as NSString).deletingLastPathComponent
        let name = (file as NSString).lastPathComponent
        let temporary = (directory as NSString).appendingPathComponent(".\(name).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        var mode: mode_t = 0o600
        var owner: (uid_t, gid_t)?
        var status = stat()
        if stat(file, &status) == 0 {
            mode = status.st_mode & 0o7777
            owner = (status.st_uid, status.st_gid)
        } else if stat(directory, &status) == 0 {
            owner = (status.st_uid, status.st_gid)
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(path: temporary, action: "create", reason: errnoText()) }
        var failure: String?
        if fchmod(fd, mode) != 0 { failure = "chmod: \(errnoText())" }
        if failure == nil, geteuid() == 0, let (uid, gid) = owner, fchown(fd, uid, gid) != 0 {
            failure = "chown: \(errnoText())"
        }
        if failure == nil {
            let bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errnoText()
                    break
                }
                offset += written
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync: \(errnoText())" }
        if close(fd) != 0, failure == nil { failure = errnoText() }
        if let failure {
            unlink(temporary)
            throw .io(path: temporary, action: "write", reason: failure)
        }
        return temporary
    }

    /// Creates `directory` and missing parents, mode 0700 (as root owned
    /// as their parent is).
    static func makeDirectories(_ directory: String) throws(RegistryEditError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw .io(path: directory, action: "use", reason: "not a directory") }
            return
        }
        let parent = (directory as NSString).deletingLastPathComponent
        if parent != directory { try makeDirectories(parent) }
        guard mkdir(directory, 0o700) == 0 || errno == EEXIST else {
            throw .io(path: directory, action: "create directory", reason: errnoText())
        }
        chmod(directory, 0o700)
        var status = stat()
        if geteuid() == 0, stat(parent, &status) == 0 {
            _ = chown(directory, status.st_uid, status.st_gid)
        }
    }

    /// Makes a rename or unlink in the directory durable.
    static func syncDirectory(of file: String) {
        let fd = open((file as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}

/// Exclusive `flock`s on the lock files of some directories, taken in the
/// order given (sorted, so two commands cannot deadlock).
final class DirectoryLocks {
    private var descriptors: [Int32] = []

    init(directories: [String], timeout: Double = 30) throws(RegistryEditError) {
        for directory in directories {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                continue  // nothing there to edit or protect
            }
            let path = (directory as NSString).appendingPathComponent(RegistryStore.lockFileName)
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                let reason = RegistryStore.errnoText()
                release()
                throw .io(path: path, action: "open the lock file", reason: reason)
            }
            descriptors.append(fd)
            let deadline = Deadline.after(timeout)
            while flock(fd, LOCK_EX | LOCK_NB) != 0 {
                guard errno == EWOULDBLOCK || errno == EINTR else {
                    let reason = RegistryStore.errnoText()
                    release()
                    throw .io(path: path, action: "lock", reason: reason)
                }
                guard !deadline.hasPassed else {
                    release()
                    throw .lockTimeout(path)
                }
                usleep(5_000)
            }
        }
    }

    /// Closing the descriptors releases the locks.
    func release() {
        for fd in descriptors { close(fd) }
        descriptors.removeAll()
    }

    deinit { release() }
}
