import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real mosquitto on 127.0.0.1:<free port> that requires a client
/// certificate signed by the test CA (mutual TLS), with persistence in its own
/// directory so sessions and queued messages survive `stop()` + `start()`.
final class MosquittoBroker {
    let port: UInt16
    let certificates: TestCertificates
    let directory: TemporaryDirectory
    let configPath: String
    let logPath: String
    private var child: ChildProcess?
    private var starts = 0

    /// Writes the configuration; does not start the broker (a test may want
    /// the gateway to come up while the broker is down).
    init(certificates: TestCertificates, directory: TemporaryDirectory) throws {
        self.certificates = certificates
        self.directory = directory
        port = try LoopbackPorts.tcp()
        let persistence = try directory.subdirectory("mosquitto-db")
        logPath = directory.file("mosquitto.log")
        var lines = [
            "# integration test broker",
            "per_listener_settings false",
            "listener \(port) 127.0.0.1",
            "cafile \(certificates.caFile)",
            "certfile \(certificates.server.certificate)",
            "keyfile \(certificates.server.key)",
            "require_certificate true",
            "use_identity_as_username true",
            "allow_anonymous false",
            "persistence true",
            "persistence_location \(persistence)/",
            // Online and offline clients alike: never drop a queued QoS 1
            // message (the default of 1000 would look like a lost message).
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 100",
            "log_dest file \(logPath)",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
        ]
        // Started as root, mosquitto would switch to the `mosquitto` user
        // (which may not be able to read the temp dir); keep it as root.
        if getuid() == 0 { lines.append("user root") }
        configPath = try directory.write(lines.joined(separator: "\n") + "\n", to: "mosquitto.conf")
    }

    /// A broker that is already accepting connections.
    static func started(certificates: TestCertificates, directory: TemporaryDirectory) async throws -> MosquittoBroker {
        let broker = try MosquittoBroker(certificates: certificates, directory: directory)
        try await broker.start()
        return broker
    }

    deinit {
        // ChildProcess.deinit kills it.
        child = nil
    }

    var isRunning: Bool { child?.isRunning ?? false }

    /// Starts (or restarts) on the same port and waits until it accepts TCP.
    func start(timeout: Duration = .seconds(15)) async throws {
        guard !isRunning else { return }
        starts += 1
        let output = directory.file("mosquitto.\(starts).out")
        let child = try ChildProcess(
            executable: try Tools.require(Tools.mosquitto),
            arguments: ["-c", configPath],
            stdoutPath: output, stderrPath: output
        )
        self.child = child
        do {
            try await eventually(timeout: timeout, "mosquitto to accept connections on 127.0.0.1:\(port)") {
                if let status = child.exitStatus {
                    throw HarnessError("mosquitto exited (\(status)) during start-up")
                }
                return LoopbackPorts.acceptsTCP(port) ? true : nil
            }
        } catch {
            await child.kill()
            throw HarnessError("\(error)\n--- mosquitto output ---\n\(tail(readText(output)))\n--- mosquitto.log ---\n\(tail(log))")
        }
    }

    /// SIGTERM and wait: mosquitto writes its persistence file on the way out.
    func stop() async throws {
        guard let child else { return }
        let (status, forced) = await child.terminate(grace: .seconds(10))
        self.child = nil
        if forced { throw HarnessError("mosquitto did not stop on SIGTERM (\(status))\n\(tail(log))") }
        // The port must be free before anyone tries to reuse it.
        try await eventually(timeout: .seconds(5), "port \(port) to close") {
            LoopbackPorts.acceptsTCP(port) ? nil : true
        }
    }

    /// Stops it (if running) and removes its directory.
    func shutdown() async {
        if let child { _ = await child.kill() }
        child = nil
    }

    var log: String { readText(logPath) }

    /// Arguments that make mosquitto_pub / mosquitto_sub connect as the test
    /// subscriber over mutual TLS.
    var clientArguments: [String] {
        [
            "-h", "localhost", "-p", String(port),
            "--cafile", certificates.caFile,
            "--cert", certificates.subscriber.certificate,
            "--key", certificates.subscriber.key,
        ]
    }

    /// Publishes one message with mosquitto_pub (used for probes and the
    /// harness self-test).
    func publish(topic: String, payload: [UInt8], qos: Int = 1, clientID: String? = nil) async throws {
        let file = directory.file("pub-\(UUID().uuidString).bin")
        _ = FileManager.default.createFile(atPath: file, contents: Data(payload))
        defer { try? FileManager.default.removeItem(atPath: file) }
        var arguments = clientArguments + ["-q", String(qos), "-t", topic, "-f", file]
        if let clientID { arguments += ["-i", clientID] }
        let result = try await ProcessRunner.run(Tools.mosquittoPub, arguments, timeout: .seconds(15))
        guard result.succeeded else { throw HarnessError("mosquitto_pub failed\n\(result.summary)\n--- broker log ---\n\(tail(log))") }
    }
}
