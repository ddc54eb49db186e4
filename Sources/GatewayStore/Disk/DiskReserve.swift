import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file of `bytes` allocated on the state directory's filesystem, given
/// up when the disk is full so that delivered rows can still be deleted
/// (see `StorageBudget`), and taken back once there is room again.
public final class DiskReserve: Sendable {
    public let path: String
    public let bytes: Int

    public init(path: String, bytes: Int) {
        self.path = path
        self.bytes = bytes
    }

    /// Whether the file is there at its full size.
    public var isHeld: Bool {
        var status = stat()
        return stat(path, &status) == 0 && Int(status.st_size) >= bytes
    }

    /// Allocates the file (blocks really taken, not a sparse file); false
    /// when the disk has no room for it, in which case nothing is left behind.
    @discardableResult
    public func take() -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return false }
        let result = posix_fallocate(descriptor, 0, off_t(bytes))
        close(descriptor)
        if result != 0 { unlink(path) }
        return result == 0
    }

    /// Gives the space back to the filesystem.
    public func release() {
        unlink(path)
    }

    /// Free bytes for an unprivileged user on the filesystem holding `path`.
    public static func freeBytes(at path: String) -> Int? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// Bytes the files take (missing ones count 0).
    public static func sizes(of paths: [String]) -> Int {
        paths.reduce(0) { total, path in
            var status = stat()
            return total + (stat(path, &status) == 0 ? Int(status.st_blocks) * 512 : 0)
        }
    }
}
