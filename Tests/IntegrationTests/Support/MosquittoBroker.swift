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
    ///
    /// While the broker was down, its port was free: another process's
    /// outgoing connection may hold it as its local port for a while (or in
    /// TIME_WAIT). mosquitto then cannot bind and exits; it is started again
    /// until `timeout`, since the gateway's configuration names this port.
    func start(timeout: Duration = .seconds(60)) async throws {
        guard !isRunning else { return }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var child: ChildProcess?
        var output = ""
        do {
            try await eventually(timeout: timeout, "mosquitto to accept connections on 127.0.0.1:\(port)") {
                if let running = child, let status = running.exitStatus {
                    let inUse = (readText(output) + tail(log, lines: 5)).contains("Address already in use")
                    guard inUse, ContinuousClock.now < deadline else {
                        throw HarnessError("mosquitto exited (\(status)) during start-up")
                    }
                    child = nil
                    try await Task.sleep(for: .milliseconds(200))
                }
                if child == nil {
                    starts += 1
                    output = directory.file("mosquitto.\(starts).out")
                    child = try ChildProcess(
                        executable: try Tools.require(Tools.mosquitto),
                        arguments: ["-c", configPath],
                        stdoutPath: output, stderrPath: output
                    )
                    self.child = child
                }
                return LoopbackPorts.acceptsTCP(port) ? true : nil
            }
        } catch {
            if let child { await child.kill() }
            self.child = nil
            throw HarnessError("\(error)\n--- mosquitto output ---\n\(tail(readText(output)))\n--- mosquitto.log ---\n\(tail(log))")
        }
    }

    /// SIGTERM and wait: mosquitto writes its persistence file on the way out.
    /// SIGSTOP: the broker keeps its sockets open and answers nothing (a
    /// hung broker or a middlebox that stopped forwarding).
    func freeze() {
        if let pid = child?.pid { kill(pid, SIGSTOP) }
    }

    func thaw() {
        if let pid = child?.pid { kill(pid, SIGCONT) }
    }

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
    func publish(topic: String, payload: [UInt8], qos: Int = 1, clientID: String? = nil, retain: Bool = false) async throws {
        let file = directory.file("pub-\(UUID().uuidString).bin")
        _ = FileManager.default.createFile(atPath: file, contents: Data(payload))
        defer { try? FileManager.default.removeItem(atPath: file) }
        var arguments = clientArguments + ["-q", String(qos), "-t", topic, "-f", file]
        if let clientID { arguments += ["-i", clientID] }
        if retain { arguments.append("-r") }
        let result = try await ProcessRunner.run(Tools.mosquittoPub, arguments, timeout: .seconds(60))
        guard result.succeeded else { throw HarnessError("mosquitto_pub failed\n\(result.summary)\n--- broker log ---\n\(tail(log))") }
    }
}

extension MosquittoBroker {
    /// How long a test waits for the gateway to reconnect and deliver after
    /// the broker returns from an outage. The gateway's reconnect backoff
    /// (full jitter) draws each delay from 0…min(120 s, 2^n s): after an
    /// outage of 10–20 s it usually tries again within seconds, but now and
    /// then only after a minute or two. Only a failing test waits this long.
    static let afterOutage: Duration = .seconds(180)
}
