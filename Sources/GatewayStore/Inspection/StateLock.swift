import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether a gateway is using a state directory, as its lock file says.
public enum GatewayPresence: Sendable, Equatable {
    /// Nobody holds the lock.
    case stopped
    /// Someone holds it exclusively: a running gateway (or a purge in
    /// progress). `pid` is nil when the holder cannot be found out.
    case running(pid: Int32?)
}

/// The state directory's lock file, seen from the operator commands.
///
/// A running gateway holds an exclusive `flock` on `<state_dir>/lock` (see
/// `StateDirectory`). `flock` locks belong to an open file description, so a
/// descriptor we open ourselves conflicts with the gateway's even inside one
/// process — which is also what lets the tests play the gateway.
public enum StateLock {
    /// Asks without waiting: takes a shared lock on a descriptor of its own and
    /// lets it go at once. A shared probe never collides with another probe,
    /// so two `queue stats` at once do not report each other as a gateway.
    public static func probe(_ paths: StatePaths) throws(InspectionError) -> GatewayPresence {
        guard let descriptor = try openLockFile(paths) else {
            // The gateway creates the file before anything else; without it
            // nothing has ever run here.
            return .stopped
        }
        defer { close(descriptor) }
        if flock(descriptor, LOCK_SH | LOCK_NB) == 0 {
            flock(descriptor, LOCK_UN)
            return .stopped
        }
        let code = errno
        guard code == EWOULDBLOCK else {
            throw .lockFile(path: paths.lock, reason: String(cString: strerror(code)))
        }
        return .running(pid: LockHolder.pid(lockedFile: descriptor))
    }

    /// Takes the exclusive lock without waiting, so no gateway can start until
    /// the returned value is gone. Refuses with `.gatewayRunning` when a
    /// gateway holds it.
    public static func acquire(_ paths: StatePaths) throws(InspectionError) -> HeldStateLock {
        guard let descriptor = try openLockFile(paths) else {
            // Creating it here could leave a root-owned lock file that the
            // gateway's service user cannot open; the gateway makes its own.
            throw .lockFile(path: paths.lock, reason: "missing (start the gateway once to create it)")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            defer { close(descriptor) }
            if code == EWOULDBLOCK {
                throw .gatewayRunning(stateDirectory: paths.directory, pid: LockHolder.pid(lockedFile: descriptor))
            }
            throw .lockFile(path: paths.lock, reason: String(cString: strerror(code)))
        }
        return HeldStateLock(descriptor: descriptor)
    }

    /// Opens the lock file read-only (`flock` needs no write access, and an
    /// operator in the gateway's group may only read it); nil when missing.
    private static func openLockFile(_ paths: StatePaths) throws(InspectionError) -> Int32? {
        let descriptor = open(paths.lock, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { return nil }
            throw .lockFile(path: paths.lock, reason: String(cString: strerror(code)))
        }
        return descriptor
    }
}

/// The state directory's exclusive lock, held until this value is released.
public final class HeldStateLock: Sendable {
    private let descriptor: Int32

    fileprivate init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
