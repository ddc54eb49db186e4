import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// systemd's notify protocol (sd_notify(3)): one datagram of `KEY=value`
/// lines to the socket named by `NOTIFY_SOCKET`. Written here rather than
/// linking libsystemd for one `sendto`.
public struct SystemdNotifier: Sendable {
    /// The socket address as systemd gave it: a path, or `@name` for the
    /// abstract namespace.
    let address: String

    /// Nil when not started by systemd as `Type=notify` (no `NOTIFY_SOCKET`).
    public init?(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let address = environment["NOTIFY_SOCKET"], address.count > 1,
              address.hasPrefix("/") || address.hasPrefix("@") else { return nil }
        self.address = address
    }

    /// Sends `fields` as one message; false when it could not be sent
    /// (systemd then treats the service as it would without it).
    @discardableResult
    public func send(_ fields: [String]) -> Bool {
        let message = Array(fields.joined(separator: "\n").utf8)
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var target = sockaddr_un()
        target.sun_family = sa_family_t(AF_UNIX)
        var path = Array(address.utf8)
        // Abstract namespace: the name starts with a NUL byte instead of '@'.
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: target.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &target.sun_path) { bytes in
            bytes.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let sent = withUnsafePointer(to: &target) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                message.withUnsafeBytes { bytes in
                    sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), address, length)
                }
            }
        }
        return sent == message.count
    }
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`, for this
/// process when `WATCHDOG_PID` says so); nil when there is none.
public enum SystemdWatchdog {
    public static func interval(environment: [String: String] = ProcessInfo.processInfo.environment) -> Double? {
        if let pid = environment["WATCHDOG_PID"], Int32(pid) != getpid() { return nil }
        guard let text = environment["WATCHDOG_USEC"], let micros = UInt64(text), micros > 0 else { return nil }
        return Double(micros) / 1_000_000
    }
}
