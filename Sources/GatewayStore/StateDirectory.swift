import Foundation

/// The gateway's state directory, held with an exclusive `flock` for as long
/// as the process runs, so two gateways can never drain one outbox.
public final class StateDirectory: Sendable {
    public let path: String
    /// Where its files are (shared with the operator commands).
    public let paths: StatePaths
    private let lockDescriptor: Int32

    /// Creates the directory when missing and takes its lock.
    public init(path: String) throws(OutboxError) {
        self.path = path
        self.paths = StatePaths(directory: path)
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o750]
            )
        } catch {
            throw .stateDirectory(path: path, reason: "cannot create: \(error.localizedDescription)")
        }
        let descriptor = open(paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw .stateDirectory(path: path, reason: String(cString: strerror(errno)))
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(descriptor)
            if code == EWOULDBLOCK { throw .locked(path: path) }
            throw .stateDirectory(path: path, reason: String(cString: strerror(code)))
        }
        lockDescriptor = descriptor
    }

    deinit {
        flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
    }

    public var databasePath: String { paths.database }
}
