import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether standard error is connected to the systemd journal.
///
/// systemd sets `JOURNAL_STREAM=<device>:<inode>` (decimal) for a service
/// whose output goes to the journal. The variable is inherited by anything
/// the service starts, even when that child's stderr goes elsewhere (a
/// pipe, a file), so it counts only when it names the file standard error
/// is open on now.
public enum JournalStream {
    /// The device and inode `JOURNAL_STREAM` names; nil if it is malformed.
    public static func parse(_ text: String) -> (device: UInt64, inode: UInt64)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return nil }
        return (device, inode)
    }

    /// Whether `variable` (the value of `JOURNAL_STREAM`) names the file
    /// `descriptor` is open on.
    public static func names(_ variable: String?, descriptor: Int32) -> Bool {
        guard let variable, let wanted = parse(variable) else { return false }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return false }
        return UInt64(info.st_dev) == wanted.device && UInt64(info.st_ino) == wanted.inode
    }

    /// Whether this process's standard error is the journal.
    public static var isStandardError: Bool {
        names(ProcessInfo.processInfo.environment["JOURNAL_STREAM"], descriptor: STDERR_FILENO)
    }
}
