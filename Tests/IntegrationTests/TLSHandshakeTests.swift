import Foundation
import Testing

/// Issue 4, proof 3: what the gateway's TLS client offers, seen by a real TLS
/// server (`openssl s_server -tlsextdebug`, with `-alpn x-amzn-mqtt-ca` as
/// AWS IoT Core's port 443): SNI carrying the configured host name, the ALPN
/// protocol (explicit `upstream.tls.alpn` on any port; the default on port
/// 443 under `aws-iot-core`, and none elsewhere), TLS 1.2 accepted, TLS 1.1
/// refused.
@Suite("TLS handshake: SNI, ALPN, protocol versions")
struct TLSHandshakeTests {
    static let awsALPN = "x-amzn-mqtt-ca"

    /// A gateway (not started) whose upstream is `server`; `tlsExtra` lines go
    /// into `upstream.tls` (the harness config has no hook for that section).
    static func gateway(
        for server: TLSTestServer, port: UInt16? = nil, profile: String = "aws-iot-core",
        tlsExtra: [String] = [], upstreamExtra: [String] = [], replace: [(String, String)] = [],
        directory: TemporaryDirectory, certificates: TestCertificates
    ) throws -> GatewayProcess {
        var settings = GatewaySettings()
        settings.profile = profile
        settings.upstreamExtra = upstreamExtra
        let gateway = try GatewayProcess(
            settings: settings, brokerPort: port ?? server.port, certificates: certificates, directory: directory
        )
        var text = readText(gateway.configPath)
        let keyLine = "    key_file: \(certificates.gateway.key)\n"
        for (from, to) in replace + [(keyLine, keyLine + tlsExtra.map { "    \($0)\n" }.joined())] {
            guard text.contains(from) else { throw HarnessError("no '\(from)' in the generated config:\n\(text)") }
            text = text.replacingOccurrences(of: from, with: to)
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: gateway.configPath))
        return gateway
    }

    /// Runs `body` with an s_server and a gateway pointed at it; stops both.
    static func withHandshake<T>(
        _ label: String, serverArguments: [String], serverPort: UInt16? = nil,
        profile: String = "aws-iot-core", tlsExtra: [String] = [],
        upstreamExtra: (TemporaryDirectory) throws -> [String] = { _ in [] }, replace: [(String, String)] = [],
        _ body: (TLSTestServer, GatewayProcess) async throws -> T
    ) async throws -> T {
        let certificates = try await TestCertificates.shared()
        let directory = try TemporaryDirectory(label)
        var server: TLSTestServer?
        var gateway: GatewayProcess?
        do {
            let started = try TLSTestServer(
                certificates: certificates, directory: directory, port: serverPort, extraArguments: serverArguments
            )
            server = started
            try await started.waitUntilListening()
            let process = try Self.gateway(
                for: started, profile: profile, tlsExtra: tlsExtra, upstreamExtra: upstreamExtra(directory), replace: replace,
                directory: directory, certificates: certificates
            )
            gateway = process
            try await process.start()
            let result = try await body(started, process)
            await process.kill()
            await started.stop()
            directory.remove()
            return result
        } catch {
            await gateway?.kill()
            await server?.stop()
            let context = """
                \(error)
                --- s_server: openssl \(server?.arguments.joined(separator: " ") ?? "") ---
                \(tail(server?.output ?? "", lines: 60))
                --- gateway log ---
                \(tail(gateway?.log ?? "", lines: 40))
                --- gateway config ---
                \(readText(gateway?.configPath ?? ""))
                """
            directory.remove()
            throw HarnessError(context)
        }
    }

    /// The handshake finished (s_server prints the cipher once it has).
    static func handshakeCompleted(_ output: String) -> Bool { output.contains("CIPHER is ") }

    @Test("SNI is the configured host name and upstream.tls.alpn is offered and selected; the MQTT CONNECT follows over that session")
    func sniAndExplicitALPN() async throws {
        try await Self.withHandshake(
            "tls-sni-alpn", serverArguments: ["-alpn", Self.awsALPN], tlsExtra: ["alpn: \(Self.awsALPN)"]
        ) { server, gateway in
            let output = try await server.waitForOutput(timeout: .seconds(30), "a completed handshake") {
                Self.handshakeCompleted($0)
            }
            #expect(TLSTestServer.serverName(in: output) == "localhost", "SNI: \(TLSTestServer.serverName(in: output) ?? "none")")
            #expect(output.contains("ALPN protocols advertised by the client: \(Self.awsALPN)"), "\(output)")
            #expect(output.contains("ALPN protocols selected: \(Self.awsALPN)"), "\(output)")
            // Mutual TLS: the gateway presented its certificate.
            #expect(output.contains("subject=CN = gw-test"), "no client certificate in \(output)")
            // s_server echoes what it receives once the handshake is done:
            // the MQTT CONNECT ("MQTT", then the client ID) went over this session.
            try await server.waitForOutput(timeout: .seconds(15), "the MQTT CONNECT after the handshake") { text in
                guard let done = text.range(of: "CIPHER is ") else { return false }
                let after = text[done.upperBound...]
                guard let mqtt = after.range(of: "MQTT") else { return false }
                return after[mqtt.upperBound...].contains("gw-test")
            }
            print("TLS: SNI '\(TLSTestServer.serverName(in: output) ?? "")', extensions offered: \(TLSTestServer.extensionNames(in: output).joined(separator: ", "))")
        }
    }

    @Test("aws-iot-core on a port other than 443 without upstream.tls.alpn offers no ALPN (the default is for 443 only); SNI still sent")
    func noALPNOffPort443() async throws {
        try await Self.withHandshake("tls-no-alpn", serverArguments: ["-alpn", Self.awsALPN]) { server, _ in
            let output = try await server.waitForOutput(timeout: .seconds(30), "a completed handshake") {
                Self.handshakeCompleted($0)
            }
            #expect(TLSTestServer.serverName(in: output) == "localhost")
            #expect(!TLSTestServer.extensionNames(in: output).contains("application layer protocol negotiation"), "\(output)")
            #expect(!output.contains("ALPN protocols advertised"), "\(output)")
        }
    }

    @Test(
        "port 443: aws-iot-core offers x-amzn-mqtt-ca without any alpn setting, generic offers none (needs to bind 127.0.0.1:443)",
        .enabled("binding port 443 needs root or a lowered ip_unprivileged_port_start") { OpenSSLAbilities.mayBindPort443 }
    )
    func defaultALPNOnPort443() async throws {
        // Only one test binds 443; another run of the suite on this machine
        // may hold it for a moment: wait for it to be free (bounded).
        try await eventually(timeout: .seconds(60), interval: .milliseconds(500), "127.0.0.1:443 to be free") {
            LoopbackPorts.acceptsTCP(443) ? nil : true
        }
        try await Self.withHandshake("tls-443", serverArguments: ["-alpn", Self.awsALPN], serverPort: 443) { server, _ in
            let output = try await server.waitForOutput(timeout: .seconds(30), "a completed handshake") {
                Self.handshakeCompleted($0)
            }
            #expect(TLSTestServer.serverName(in: output) == "localhost")
            #expect(output.contains("ALPN protocols advertised by the client: \(Self.awsALPN)"), "\(output)")
            #expect(output.contains("ALPN protocols selected: \(Self.awsALPN)"), "\(output)")
        }
        // The default belongs to the aws-iot-core profile: generic on 443 offers none.
        try await eventually(timeout: .seconds(30), interval: .milliseconds(200), "127.0.0.1:443 to be free again") {
            LoopbackPorts.acceptsTCP(443) ? nil : true
        }
        try await Self.withHandshake(
            "tls-443-generic", serverArguments: ["-alpn", Self.awsALPN], serverPort: 443, profile: "generic"
        ) { server, _ in
            let output = try await server.waitForOutput(timeout: .seconds(30), "a completed handshake") {
                Self.handshakeCompleted($0)
            }
            #expect(TLSTestServer.serverName(in: output) == "localhost")
            #expect(!output.contains("ALPN protocols advertised"), "generic on 443 must not offer ALPN: \(output)")
        }
    }

    @Test("a TLS 1.2-only server: the handshake completes (TLS 1.2 is allowed, not only 1.3)")
    func tls12Accepted() async throws {
        try await Self.withHandshake("tls-12", serverArguments: ["-tls1_2"]) { server, _ in
            let output = try await server.waitForOutput(timeout: .seconds(30), "a completed handshake") {
                Self.handshakeCompleted($0)
            }
            #expect(TLSTestServer.serverName(in: output) == "localhost")
        }
    }

    @Test(
        "a TLS 1.1-only server: the gateway never completes a handshake",
        .enabled("this openssl cannot serve TLS 1.1 at all") { await OpenSSLAbilities.canServeTLS11() }
    )
    func tls11Refused() async throws {
        try await Self.withHandshake(
            "tls-11", serverArguments: ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]
        ) { server, gateway in
            // Two attempts (the first, and a reconnect after backoff) reach
            // the server and fail there.
            let output = try await server.waitForOutput(timeout: .seconds(60), "two refused ClientHellos") {
                $0.components(separatedBy: "TLS client extension \"server name\"").count - 1 >= 2
                    && $0.components(separatedBy: "ERROR").count - 1 >= 2
            }
            #expect(!Self.handshakeCompleted(output), "a TLS 1.1 handshake completed:\n\(output)")
            #expect(!gateway.currentLog.contains("upstream connected"), "\(gateway.currentLog)")
            #expect(gateway.isRunning, "the gateway must keep running and retrying")
            let reasons = output.split(separator: "\n").filter { $0.contains("error:") }.prefix(2)
            print("TLS 1.1 server refused: \(reasons.joined(separator: " | "))")
        }
    }

    /// The fields of an MQTT 3.1.1 CONNECT (no will), as received.
    struct Connect: CustomStringConvertible {
        var protocolLevel: UInt8
        var flags: UInt8
        var keepAlive: Int
        var clientID: String
        var username: String?
        var password: String?
        /// MQTT 5 only: the Session Expiry Interval property, if sent.
        var sessionExpiry: UInt32?
        var cleanSession: Bool { flags & 0x02 != 0 }
        var description: String {
            "level \(protocolLevel), flags 0x\(String(flags, radix: 16)), keep-alive \(keepAlive), client ID '\(clientID)', user \(username ?? "-")"
        }
    }

    /// s_server echoes the bytes it receives after the handshake: the first
    /// thing the gateway sends is its CONNECT.
    static func connect(in output: Data) -> Connect? {
        let bytes = [UInt8](output)
        guard let done = bytes.firstRange(of: Array("CIPHER is ".utf8)),
              let name = bytes[done.upperBound...].firstRange(of: [0x00, 0x04] + Array("MQTT".utf8)) else { return nil }
        // The whole packet must be there: before the protocol name come the
        // packet type (0x10) and the Remaining Length (1 to 4 bytes, the
        // last one below 0x80).
        let remaining = (1...4).lazy.compactMap { width -> Int? in
            let start = name.lowerBound - width
            guard start - 1 >= done.upperBound, bytes[start - 1] == 0x10 else { return nil }
            let digits = bytes[start..<name.lowerBound]
            guard digits.last! < 0x80, digits.dropLast().allSatisfy({ $0 >= 0x80 }) else { return nil }
            return digits.enumerated().reduce(0) { $0 | Int($1.element & 0x7F) << (7 * $1.offset) }
        }.first
        guard let remaining, name.lowerBound + remaining <= bytes.count else { return nil }
        var index = name.upperBound
        func byte() -> UInt8? {
            guard index < bytes.count else { return nil }
            defer { index += 1 }
            return bytes[index]
        }
        func short() -> Int? {
            guard let high = byte(), let low = byte() else { return nil }
            return Int(high) << 8 | Int(low)
        }
        func string() -> String? {
            guard let length = short(), index + length <= bytes.count else { return nil }
            defer { index += length }
            return String(decoding: bytes[index..<(index + length)], as: UTF8.self)
        }
        guard let level = byte(), let flags = byte(), let keepAlive = short() else { return nil }
        var sessionExpiry: UInt32?
        if level == 5 {
            // Properties: a variable-length integer, then identifier + value pairs.
            var length = 0, shift = 0
            while let next = byte() {
                length |= Int(next & 0x7F) << shift
                shift += 7
                if next & 0x80 == 0 { break }
            }
            let end = index + length
            guard end <= bytes.count else { return nil }
            while index < end, let identifier = byte() {
                switch identifier {
                case 0x11:  // Session Expiry Interval, four bytes
                    guard let high = short(), let low = short() else { return nil }
                    sessionExpiry = UInt32(high) << 16 | UInt32(low)
                case 0x21, 0x22: index += 2  // Receive Maximum, Topic Alias Maximum
                case 0x27: index += 4  // Maximum Packet Size
                case 0x17, 0x19: index += 1  // Request Problem / Response Information
                case 0x15, 0x16: _ = string()  // Authentication Method / Data
                case 0x26: _ = string(); _ = string()  // User Property
                default: return nil
                }
            }
            index = end
        }
        guard let clientID = string() else { return nil }
        var connect = Connect(protocolLevel: level, flags: flags, keepAlive: keepAlive, clientID: clientID, sessionExpiry: sessionExpiry)
        if flags & 0x80 != 0 { connect.username = string() }
        if flags & 0x40 != 0 { connect.password = string() }
        return connect
    }

    static func waitForConnect(_ server: TLSTestServer) async throws -> Connect {
        try await eventually(timeout: .seconds(30), interval: .milliseconds(100), "an MQTT CONNECT after the handshake") {
            FileManager.default.contents(atPath: server.outputPath).flatMap(Self.connect(in:))
        }
    }

    @Test("the CONNECT over that session: MQTT 3.1.1, persistent session, keep_alive 10 clamped to 30, username and password_file sent")
    func connectPacket() async throws {
        try await Self.withHandshake(
            "tls-connect", serverArguments: [],
            upstreamExtra: { directory in
                let file = try directory.write("s3cret\n", to: "password.txt")
                return ["username: gw-user", "password_file: \(file)"]
            },
            replace: [("  keep_alive: 30\n", "  keep_alive: 10\n")]
        ) { server, gateway in
            let connect = try await Self.waitForConnect(server)
            print("TLS: CONNECT \(connect)")
            #expect(connect.protocolLevel == 4, "MQTT 3.1.1: \(connect)")
            #expect(!connect.cleanSession, "persistent session (clean_session false): \(connect)")
            #expect(connect.keepAlive == 30, "keep_alive 10 under aws-iot-core must be sent as 30: \(connect)")
            #expect(connect.clientID == "gw-test")
            #expect(connect.username == "gw-user", "\(connect)")
            #expect(connect.password == "s3cret", "the password file's trailing newline is not part of the password: \(String(describing: connect.password))")
            #expect(gateway.currentLog.contains("keep_alive"), "the clamp is logged as a warning at start-up:\n\(gateway.currentLog)")
        }
    }

    @Test("keep_alive 5000 under aws-iot-core is sent as 1200")
    func keepAliveClampedHigh() async throws {
        try await Self.withHandshake(
            "tls-keepalive", serverArguments: [], replace: [("  keep_alive: 30\n", "  keep_alive: 5000\n")]
        ) { server, _ in
            let connect = try await Self.waitForConnect(server)
            #expect(connect.keepAlive == 1200, "\(connect)")
            #expect(connect.username == nil && connect.password == nil, "no credentials configured: \(connect)")
        }
    }

    @Test("protocol mqtt5: CONNECT is MQTT 5 with clean start off and the configured session expiry")
    func connectMQTT5() async throws {
        try await Self.withHandshake(
            "tls-connect-v5", serverArguments: [],
            upstreamExtra: { _ in ["protocol: mqtt5", "session_expiry: 2h"] }
        ) { server, _ in
            let connect = try await Self.waitForConnect(server)
            print("TLS: CONNECT \(connect), session expiry \(connect.sessionExpiry.map(String.init) ?? "none")")
            #expect(connect.protocolLevel == 5, "\(connect)")
            #expect(!connect.cleanSession, "clean start must be off: \(connect)")
            #expect(connect.sessionExpiry == 7200, "session expiry: \(String(describing: connect.sessionExpiry))")
            #expect(connect.clientID == "gw-test")
        }
    }

    @Test("protocol mqtt5 without session_expiry: the default of one hour is sent")
    func connectMQTT5DefaultExpiry() async throws {
        try await Self.withHandshake(
            "tls-connect-v5-default", serverArguments: [], upstreamExtra: { _ in ["protocol: mqtt5"] }
        ) { server, _ in
            let connect = try await Self.waitForConnect(server)
            #expect(connect.protocolLevel == 5, "\(connect)")
            #expect(connect.sessionExpiry == 3600, "session expiry: \(String(describing: connect.sessionExpiry))")
        }
    }
}
