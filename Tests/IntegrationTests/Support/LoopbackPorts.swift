import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Free ports on 127.0.0.1 below the kernel's ephemeral range (see
/// `bindAny`). A port is handed out at most once per test process, so two
/// tests running in parallel never get the same one, and the harness's own
/// CoAP clients bind ports from here too (`bindClientUDP`, coap-client's
/// `-p`) so they never take a gateway's.
enum LoopbackPorts {
    private static let handedOut = Mutex<Set<String>>([])

    static func tcp() throws -> UInt16 { try unique(kind: "tcp", type: socketStream) }
    static func udp() throws -> UInt16 { try unique(kind: "udp", type: socketDatagram) }

    /// Binds a client's UDP socket to 127.0.0.1 on a port handed out here,
    /// rather than letting the kernel pick any free one: an automatic pick
    /// may be a port already handed out to a gateway that has not bound it
    /// yet (or is restarting), which would then fail to start.
    static func bindClientUDP(_ fd: Int32) throws {
        for _ in 0..<20 {
            var address = loopback(port: try udp())
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if bound == 0 { return }
            guard errno == EADDRINUSE else { throw HarnessError("bind(udp 127.0.0.1): \(String(cString: strerror(errno)))") }
        }
        throw HarnessError("no free udp port on 127.0.0.1 for a client socket")
    }

    /// Whether something accepts TCP connections on 127.0.0.1:port.
    static func acceptsTCP(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, socketStream, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }

    private static func unique(kind: String, type: Int32) throws -> UInt16 {
        for _ in 0..<50 {
            let port = try bindAny(type: type)
            let fresh = handedOut.withLock { $0.insert("\(kind)/\(port)").inserted }
            if fresh { return port }
        }
        throw HarnessError("no free \(kind) port on 127.0.0.1")
    }

    /// A port below the kernel's ephemeral range that binds now. Ports from
    /// the ephemeral range (what binding port 0 gives) can be taken at any
    /// moment as the local port of some process's outgoing connection, and a
    /// long-lived one (an MQTT session, wrk) then keeps a broker that is
    /// started later from binding it; below the range only explicit binds
    /// compete, and those go through here.
    private static func bindAny(type: Int32) throws -> UInt16 {
        let upper = min(ephemeralLow - 1, 32_767)
        for _ in 0..<200 {
            let port = UInt16.random(in: 10_000...UInt16(max(10_001, upper)))
            if try bindable(port, type: type) { return port }
        }
        throw HarnessError("no bindable port on 127.0.0.1 between 10000 and \(upper)")
    }

    /// The first port of /proc/sys/net/ipv4/ip_local_port_range (32768 by default).
    private static let ephemeralLow: Int = {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } ?? 32_768
    }()

    private static func bindable(_ port: UInt16, type: Int32) throws -> Bool {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw HarnessError("socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return bound == 0
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}

#if os(Linux)
let socketStream = Int32(SOCK_STREAM.rawValue)
let socketDatagram = Int32(SOCK_DGRAM.rawValue)
#else
let socketStream = SOCK_STREAM
let socketDatagram = SOCK_DGRAM
#endif
