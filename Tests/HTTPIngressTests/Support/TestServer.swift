#if canImport(Glibc)
import Glibc
#endif
@testable import GatewayCore
@testable import HTTPIngress
import Logging

enum TestServer {
    static let logger: Logger = {
        var logger = Logger(label: "http-ingress-tests")
        logger.logLevel = .error
        return logger
    }()

    static func settings(
        maxBody: Int = 1024,
        listen: [ListenAddress] = [ListenAddress(host: "127.0.0.1", port: 0)]
    ) -> HTTPSettings {
        HTTPSettings(
            listen: listen, maxBody: maxBody, maxConnections: 32, maxConnectionsPerIP: 32,
            idleTimeout: 5, threads: 2
        )
    }

    /// A started server on a loopback port of its own, and its base URL.
    static func start(
        _ pipeline: FakePipeline,
        maxBody: Int = 1024,
        drainTimeout: Duration = .seconds(2)
    ) throws -> (server: HTTPServer, base: String) {
        let server = HTTPServer(
            settings: settings(maxBody: maxBody), pipeline: pipeline, logger: logger, drainTimeout: drainTimeout
        )
        try server.start()
        return (server, "http://127.0.0.1:\(server.boundPorts[0])")
    }

    /// A started server with a plain and a TLS listener on loopback ports of
    /// their own, and their base URLs. `deviceCA`: ask clients for a
    /// certificate under the PKI's CA.
    static func startSecure(
        _ pipeline: FakePipeline,
        pki: TestPKI,
        deviceCA: Bool = true,
        drainTimeout: Duration = .seconds(2)
    ) throws -> (server: HTTPServer, plain: String, secure: String) {
        let server = HTTPServer(
            settings: secureSettings(pki: pki, deviceCA: deviceCA), pipeline: pipeline, logger: logger,
            drainTimeout: drainTimeout
        )
        try server.start()
        return (server, "http://127.0.0.1:\(server.boundPorts[0])", "https://127.0.0.1:\(server.boundTLSPorts[0])")
    }

    static func secureSettings(pki: TestPKI, deviceCA: Bool = true) -> HTTPSettings {
        var settings = settings()
        settings.tls = HTTPTLSSettings(
            listen: [ListenAddress(host: "127.0.0.1", port: 0)],
            certFile: pki.path("server.pem"), keyFile: pki.path("server.key"),
            caFile: deviceCA ? pki.caFile : nil
        )
        return settings
    }

    /// Whether this machine can bind `[::1]` (some containers have no IPv6).
    static let ipv6LoopbackAvailable: Bool = {
        let socket = Glibc.socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
            }
        }
    }()
}
