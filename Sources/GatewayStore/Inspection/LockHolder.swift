import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds the process holding a `flock` through `/proc/locks`, so a refusal can
/// name the gateway's pid. Best effort: nil whenever the kernel does not say
/// (another pid namespace reports 0, non-Linux has no `/proc/locks`).
enum LockHolder {
    /// The pid of the process holding an exclusive `flock` on the file open
    /// as `descriptor`.
    static func pid(lockedFile descriptor: Int32) -> Int32? {
        var info = stat()
        guard fstat(descriptor, &info) == 0,
              let text = try? String(contentsOfFile: "/proc/locks", encoding: .utf8)
        else { return nil }
        return pid(in: text, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Parses `/proc/locks` lines such as
    /// `1: FLOCK  ADVISORY  WRITE 30931 fe:00:16261688 0 EOF`
    /// (the kernel prints the device as hex `major:minor`, the inode in decimal).
    /// Lines with `->` are processes waiting for a lock, not holding one.
    static func pid(in text: String, device: UInt64, inode: UInt64) -> Int32? {
        let wanted = "\(String(major(device), radix: 16)):\(String(minor(device), radix: 16)):\(inode)"
        for line in text.split(separator: "\n") where !line.contains("->") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", fields[3] == "WRITE",
                  normalized(fields[5]) == wanted,
                  let pid = Int32(fields[4]), pid > 0
            else { continue }
            return pid
        }
        return nil
    }

    /// `fe:00:123` → `fe:0:123`, so the comparison ignores zero padding.
    private static func normalized(_ field: Substring) -> String {
        let parts = field.split(separator: ":")
        guard parts.count == 3, let major = UInt64(parts[0], radix: 16), let minor = UInt64(parts[1], radix: 16) else {
            return String(field)
        }
        return "\(String(major, radix: 16)):\(String(minor, radix: 16)):\(parts[2])"
    }

    /// glibc's `dev_t` layout (what `major()`/`minor()` decode; those are
    /// macros Swift cannot call).
    static func major(_ device: UInt64) -> UInt64 {
        ((device & 0x0000_0000_000f_ff00) >> 8) | ((device & 0xffff_f000_0000_0000) >> 32)
    }

    static func minor(_ device: UInt64) -> UInt64 {
        (device & 0x0000_0000_0000_00ff) | ((device & 0x0000_0fff_fff0_0000) >> 12)
    }
}
