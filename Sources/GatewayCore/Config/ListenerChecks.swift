/// One listen address as configured, with the key that named it and where.
struct ConfiguredListener {
    enum Transport: String { case tcp = "TCP", udp = "UDP" }

    var address: ListenAddress
    /// `http.listen`, `coap.dtls.listen`, ...
    var key: String
    var transport: Transport
    /// Nil for a default nobody wrote down.
    var location: SourceLocation?
}

/// Finds listen addresses that cannot both work, decided by how the adapters
/// bind (see docs/configuration.md, "Listeners"):
/// - TCP (`http.listen`, `http.tls.listen`, `admin.listen`): libmicrohttpd
///   sets `IPV6_V6ONLY` on IPv6 sockets, so `[::]` and `0.0.0.0` live side by
///   side; within one family, one port can be bound once per address and a
///   wildcard takes them all, so the second bind fails (EADDRINUSE).
/// - UDP (`coap.listen`, `coap.dtls.listen`): libcoap sets `SO_REUSEADDR`
///   and makes IPv6 sockets dual-stack, so overlapping binds all succeed and
///   the kernel hands each datagram to the most specific socket. Between two
///   plain (or two DTLS) endpoints that is harmless; between a plain and a
///   DTLS endpoint it silently gives one protocol's clients to the other.
struct ListenerChecks {
    let issues: IssueList
    /// Where a conflict with only defaults involved is reported.
    let configFile: String

    func check(_ listeners: [ConfiguredListener]) {
        for (index, later) in listeners.enumerated() {
            for earlier in listeners[..<index] where earlier.transport == later.transport {
                // Listed twice under one key is reported where it is parsed.
                if earlier.key == later.key && earlier.address == later.address { continue }
                switch later.transport {
                case .tcp:
                    guard Self.tcpConflict(earlier.address, later.address) else { continue }
                    report(
                        earlier, later,
                        "both take TCP port \(later.address.port) on \(Self.sameAddress(earlier.address, later.address) ? "the same address" : "overlapping addresses (a wildcard takes every address of its family)"): the second cannot bind (address in use) and the gateway does not start; give one of them another port"
                    )
                case .udp:
                    guard earlier.key != later.key, Self.udpOverlap(earlier.address, later.address) else { continue }
                    report(
                        earlier, later,
                        "overlap on UDP port \(later.address.port): both bind, and the kernel hands each datagram to only one of them (the more specific address), so plain CoAP and DTLS clients would reach the wrong endpoint; give DTLS its own port (5684 is its standard one)"
                    )
                }
            }
        }
    }

    private func report(_ earlier: ConfiguredListener, _ later: ConfiguredListener, _ problem: String) {
        // Point at the one written down, the later one when both are.
        let (at, other) = later.location != nil ? (later, earlier) : (earlier, later)
        let place = other.location.map { " (\($0.file):\($0.line))" } ?? " (its default)"
        issues.add(
            "\(at.key) \(at.address) and \(other.key) \(other.address)\(place) \(problem)",
            at: at.location ?? SourceLocation(file: configFile, line: 1, column: 1)
        )
    }

    static func bytes(_ address: ListenAddress) -> [UInt8] {
        IPAddressText.bytes(address.host, ipv6: address.isIPv6)
    }

    static func isWildcard(_ bytes: [UInt8]) -> Bool { bytes.allSatisfy { $0 == 0 } }

    static func sameAddress(_ a: ListenAddress, _ b: ListenAddress) -> Bool {
        a.isIPv6 == b.isIPv6 && bytes(a) == bytes(b)
    }

    /// Same family, same port, and the same address or a wildcard on either side.
    static func tcpConflict(_ a: ListenAddress, _ b: ListenAddress) -> Bool {
        guard a.port == b.port, a.isIPv6 == b.isIPv6 else { return false }
        let x = bytes(a), y = bytes(b)
        return x == y || isWildcard(x) || isWildcard(y)
    }

    /// The IPv4 addresses a dual-stack IPv6 socket also receives for: all of
    /// them for `[::]`, one for a v4-mapped `[::ffff:a.b.c.d]`, none otherwise.
    private enum IPv4Reach: Equatable { case all, one([UInt8]), none }

    private static func ipv4Reach(_ address: ListenAddress) -> IPv4Reach {
        let raw = bytes(address)
        guard address.isIPv6 else { return isWildcard(raw) ? .all : .one(raw) }
        if isWildcard(raw) { return .all }
        if raw.count == 16, raw[0..<10].allSatisfy({ $0 == 0 }), raw[10] == 0xff, raw[11] == 0xff {
            return .one(Array(raw[12...]))
        }
        return .none
    }

    /// Whether some datagram could be meant for both.
    static func udpOverlap(_ a: ListenAddress, _ b: ListenAddress) -> Bool {
        guard a.port == b.port else { return false }
        let x = bytes(a), y = bytes(b)
        if a.isIPv6 && b.isIPv6 && (x == y || isWildcard(x) || isWildcard(y)) { return true }
        switch (ipv4Reach(a), ipv4Reach(b)) {
        case (.none, _), (_, .none): return false
        case (.all, _), (_, .all): return true
        case (.one(let p), .one(let q)): return p == q
        }
    }
}
