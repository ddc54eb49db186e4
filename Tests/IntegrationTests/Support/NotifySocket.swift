import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What systemd is for a `Type=notify` service: a Unix datagram socket the
/// child finds through `NOTIFY_SOCKET`. Datagrams are collected with the
/// time they were read.
final class NotifySocket: @unchecked Sendable {
    // @unchecked Sendable: `received` is only touched under `lock`; the
    // descriptor is only read by the reader thread and closed after it ends.
    struct Message: Sendable {
        var time: ContinuousClock.Instant
        var fields: [String]

        func has(_ field: String) -> Bool { fields.contains(field) }
        func value(_ key: String) -> String? {
            fields.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
    }

    let path: String
    private let descriptor: Int32
    private let lock = NSLock()
    private var received: [Message] = []
    private var closed = false

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw HarnessError("socket(AF_UNIX): errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(descriptor)
            throw HarnessError("notify socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            close(descriptor)
            throw HarnessError("bind(\(path)): errno \(errno)")
        }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread.detachNewThread { [self] in readLoop() }
    }

    deinit { stop() }

    func stop() {
        lock.lock()
        let first = !closed
        closed = true
        lock.unlock()
        if first { unlink(path) }
    }

    var messages: [Message] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    /// Messages carrying `field` exactly (e.g. `WATCHDOG=1`).
    func count(_ field: String) -> Int { messages.filter { $0.has(field) }.count }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            lock.lock()
            let done = closed
            lock.unlock()
            if done { break }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { continue }
            let text = String(decoding: buffer[0..<count], as: UTF8.self)
            let message = Message(time: .now, fields: text.split(separator: "\n").map(String.init))
            lock.lock()
            received.append(message)
            lock.unlock()
        }
        close(descriptor)
    }
}
