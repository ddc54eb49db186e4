import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `openssl s_server` on 127.0.0.1 with the test server certificate, printing
/// what each client offers (`-tlsextdebug`: SNI and every other extension;
/// with `-alpn`, the ALPN list the client advertised and what was chosen).
///
/// s_server exits as soon as its standard input reaches end-of-file, so its
/// stdin is a FIFO whose write end this object holds open until `stop()`.
final class TLSTestServer {
    let port: UInt16
    let outputPath: String
    let arguments: [String]
    private let child: ChildProcess
    private var stdinWriter: Int32

    /// - Parameters:
    ///   - port: the TCP port on 127.0.0.1 (a free one when nil).
    ///   - extraArguments: e.g. `["-alpn", "x-amzn-mqtt-ca"]`, `["-tls1_1"]`.
    init(
        certificates: TestCertificates, directory: TemporaryDirectory,
        port: UInt16? = nil, extraArguments: [String], label: String = "s_server"
    ) throws {
        self.port = try port ?? LoopbackPorts.tcp()
        outputPath = directory.file("\(label).out")
        let fifo = directory.file("\(label).stdin")
        unlink(fifo)
        guard mkfifo(fifo, 0o600) == 0 else {
            throw HarnessError("mkfifo \(fifo): \(String(cString: strerror(errno)))")
        }
        // O_RDWR on a FIFO does not wait for a reader (Linux), and keeps a
        // writer present, so the child's read end never sees end-of-file.
        stdinWriter = open(fifo, O_RDWR | O_CLOEXEC)
        guard stdinWriter >= 0 else { throw HarnessError("open \(fifo): \(String(cString: strerror(errno)))") }
        arguments = [
            "s_server", "-accept", "127.0.0.1:\(self.port)",
            "-cert", certificates.server.certificate, "-key", certificates.server.key,
            // Ask for a client certificate (mutual TLS, like the broker).
            "-CAfile", certificates.caFile, "-verify", "1",
            "-tlsextdebug",
        ] + extraArguments
        do {
            child = try ChildProcess(
                executable: try Tools.require(Tools.openssl), arguments: arguments,
                stdoutPath: outputPath, stderrPath: outputPath, stdin: fifo
            )
        } catch {
            close(stdinWriter)
            throw error
        }
    }

    deinit {
        if stdinWriter >= 0 { close(stdinWriter) }
    }

    var output: String { readText(outputPath) }
    var exitStatus: ExitStatus? { child.exitStatus }

    /// Waits until it accepts TCP connections (it prints `ACCEPT` when listening).
    func waitUntilListening(timeout: Duration = .seconds(10)) async throws {
        try await eventually(timeout: timeout, "openssl s_server to listen on 127.0.0.1:\(port)") {
            if let status = child.exitStatus {
                throw HarnessError("openssl s_server exited (\(status))\n\(tail(output))")
            }
            return output.contains("ACCEPT") ? true : nil
        }
    }

    /// Waits until `condition` holds for the output so far.
    @discardableResult
    func waitForOutput(timeout: Duration, _ what: String, _ condition: @escaping (String) -> Bool) async throws -> String {
        do {
            return try await eventually(timeout: timeout, interval: .milliseconds(100), "s_server output: \(what)") {
                let text = output
                return condition(text) ? text : nil
            }
        } catch {
            throw HarnessError("\(error)\n--- s_server output ---\n\(tail(output, lines: 60))")
        }
    }

    func stop() async {
        if stdinWriter >= 0 { close(stdinWriter); stdinWriter = -1 }
        _ = await child.terminate(grace: .seconds(3))
    }

    /// The ClientHello extensions as s_server prints them: name → hex dump text.
    static func extensionNames(in output: String) -> [String] {
        output.matches(of: /TLS client extension "([^"]+)"/).map { String($0.output.1) }
    }

    /// The host name in the first SNI extension printed, decoded from the hex dump.
    static func serverName(in output: String) -> String? {
        guard let start = output.range(of: "TLS client extension \"server name\"") else { return nil }
        var bytes: [UInt8] = []
        for line in output[start.upperBound...].split(separator: "\n").dropFirst() {
            // `0000 - 00 0c 00 00 09 6c 6f 63-61 6c 68 6f 73 74   .....localhost`
            guard let match = line.wholeMatch(of: /[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){1,16})\s*.*/) else { break }
            let hex = match.output.1.replacingOccurrences(of: "-", with: " ").split(separator: " ")
            bytes += hex.compactMap { UInt8($0, radix: 16) }
        }
        // server_name_list length (2), name type (1) = host_name (0), name length (2), name.
        guard bytes.count >= 5, bytes[2] == 0 else { return nil }
        let length = Int(bytes[3]) << 8 | Int(bytes[4])
        guard bytes.count >= 5 + length else { return nil }
        return String(decoding: bytes[5..<(5 + length)], as: UTF8.self)
    }
}

/// What the local openssl can do, for tests that need an old protocol.
enum OpenSSLAbilities {
    /// Whether this openssl can complete a TLS 1.1 handshake with itself
    /// (OpenSSL 3 allows TLS 1.1 only at security level 0, and a build may
    /// leave it out entirely). Runs a real s_server / s_client pair.
    static func canServeTLS11() async -> Bool {
        do {
            let certificates = try await TestCertificates.shared()
            let directory = try TemporaryDirectory("tls11-probe")
            defer { directory.remove() }
            let server = try TLSTestServer(
                certificates: certificates, directory: directory,
                extraArguments: ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], label: "probe"
            )
            let client: ProcessResult
            do {
                try await server.waitUntilListening()
                client = try await ProcessRunner.run(Tools.openssl, [
                    "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0",
                    "-CAfile", certificates.caFile, "-cert", certificates.subscriber.certificate, "-key", certificates.subscriber.key,
                ], stdin: Data(), timeout: .seconds(10))
            } catch {
                await server.stop()
                throw error
            }
            await server.stop()
            return client.stdoutText.contains("Protocol  : TLSv1.1") && client.stdoutText.contains("Cipher is ")
                && !client.stdoutText.contains("Cipher is (NONE)")
        } catch {
            return false
        }
    }

    /// Whether this process may bind 127.0.0.1:443 (root, or a lowered
    /// net.ipv4.ip_unprivileged_port_start).
    static var mayBindPort443: Bool {
        if geteuid() == 0 { return true }
        let start = Int(readText("/proc/sys/net/ipv4/ip_unprivileged_port_start").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1024
        return start <= 443
    }
}
