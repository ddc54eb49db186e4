import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The real `iot-gateway run --config FILE` as a child process, on free
/// loopback ports, with its own state directory (kept across restarts) and
/// its stderr in a log file per start.
final class GatewayProcess {
    let directory: TemporaryDirectory
    let configPath: String
    let stateDirectory: String
    let coapPort: UInt16
    let httpPort: UInt16
    let adminPort: UInt16
    /// DTLS and HTTPS ports (bound only when the settings have `security`).
    let dtlsPort: UInt16
    let httpsPort: UInt16
    /// The registry file when the settings have `security`.
    let registryFile: String
    private var child: ChildProcess?
    private var starts = 0
    private var logPaths: [String] = []
    /// Extra environment for the next `start()` (e.g. LD_PRELOAD for fault injection).
    var environment: [String: String] = [:]

    init(
        settings: GatewaySettings = GatewaySettings(),
        brokerPort: UInt16,
        certificates: TestCertificates,
        directory: TemporaryDirectory
    ) throws {
        self.directory = directory
        coapPort = try LoopbackPorts.udp()
        httpPort = try LoopbackPorts.tcp()
        adminPort = try LoopbackPorts.tcp()
        dtlsPort = settings.security == nil ? 0 : try LoopbackPorts.udp()
        httpsPort = settings.security == nil ? 0 : try LoopbackPorts.tcp()
        stateDirectory = try directory.subdirectory("gateway-state")
        let registryDirectory = try directory.subdirectory("devices")
        registryFile = registryDirectory + "/registry.yaml"
        if let security = settings.security {
            try Self.writeRegistry(TestDevice.registry(security.devices), to: registryFile)
        }
        let yaml = settings.yaml(
            stateDirectory: stateDirectory, brokerPort: brokerPort,
            coapPort: coapPort, httpPort: httpPort, adminPort: adminPort, certificates: certificates,
            dtlsPort: dtlsPort, httpsPort: httpsPort, registryPattern: registryDirectory + "/*.yaml"
        )
        configPath = try directory.write(yaml, to: "gateway.yaml")
    }

    /// A gateway that has logged `gateway ready`.
    static func started(
        settings: GatewaySettings = GatewaySettings(),
        broker: MosquittoBroker
    ) async throws -> GatewayProcess {
        let gateway = try GatewayProcess(
            settings: settings, brokerPort: broker.port,
            certificates: broker.certificates, directory: broker.directory
        )
        try await gateway.start()
        return gateway
    }

    deinit { child = nil }

    var isRunning: Bool { child?.isRunning ?? false }
    var pid: pid_t? { child?.pid }

    /// Starts it (again, on the same config and state) and waits for the
    /// `gateway ready` log line.
    ///
    /// The ports were free when chosen (or when the last run exited), but
    /// until the gateway binds them another process's socket may take one
    /// as its local port for a moment. The gateway then exits with "Address
    /// already in use"; it is started again, on the same ports (clients and
    /// the configuration name them), until `timeout`.
    func start(timeout: Duration = .seconds(60), interval: Duration = .milliseconds(50)) async throws {
        guard !isRunning else { return }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var child: ChildProcess?
        var logPath = ""
        do {
            try await eventually(timeout: timeout, interval: interval, "'gateway ready' in \(logPath)") {
                if let running = child, let status = running.exitStatus {
                    guard readText(logPath).contains("Address already in use"), ContinuousClock.now < deadline else {
                        throw HarnessError("iot-gateway exited (\(status)) before it was ready")
                    }
                    child = nil
                    try await Task.sleep(for: .milliseconds(250))
                }
                if child == nil {
                    starts += 1
                    logPath = directory.file("gateway.\(starts).log")
                    logPaths.append(logPath)
                    child = try ChildProcess(
                        executable: try GatewayBinary.path(),
                        arguments: ["run", "--config", configPath],
                        stdoutPath: directory.file("gateway.\(starts).out"), stderrPath: logPath,
                        environment: environment
                    )
                    self.child = child
                }
                return readText(logPath).contains("gateway ready") ? true : nil
            }
        } catch {
            if let child { await child.kill() }
            self.child = nil
            throw HarnessError("\(error)\n--- config ---\n\(readText(configPath))\n--- gateway log ---\n\(tail(readText(logPath), lines: 60))")
        }
    }

    /// Waits until the current run has logged its upstream connection.
    func waitUntilConnected(timeout: Duration = .seconds(60)) async throws {
        try await eventually(timeout: timeout, "'upstream connected' in the gateway log") {
            currentLog.contains("upstream connected") ? true : nil
        }
    }

    /// SIGTERM and wait for the exit (SIGKILL after `grace`).
    @discardableResult
    func terminate(grace: Duration = .seconds(15)) async -> (status: ExitStatus, forced: Bool) {
        guard let child else { return (.exited(0), false) }
        let result = await child.terminate(grace: grace)
        self.child = nil
        return result
    }

    /// kill -9: no chance to finish anything.
    func kill() async {
        if let child { await child.kill() }
        child = nil
    }

    /// All logs of all starts, for failure messages.
    var log: String {
        logPaths.enumerated().map { "=== start \($0.offset + 1) ===\n" + readText($0.element) }.joined(separator: "\n")
    }

    var currentLog: String { logPaths.last.map(readText) ?? "" }

    func httpURL(_ path: String) -> String { "http://127.0.0.1:\(httpPort)\(path)" }
    func httpsURL(_ path: String) -> String { "https://127.0.0.1:\(httpsPort)\(path)" }

    /// Replaces the registry file the way `devices` commands do (a new file
    /// renamed into place, mode 0600); the gateway notices within seconds.
    func writeRegistry(_ devices: [TestDevice]) throws {
        try Self.writeRegistry(TestDevice.registry(devices), to: registryFile)
    }

    static func writeRegistry(_ text: String, to path: String) throws {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]),
              rename(temporary, path) == 0 else {
            throw HarnessError("cannot write the registry \(path)")
        }
    }
    func adminURL(_ path: String) -> String { "http://127.0.0.1:\(adminPort)\(path)" }
    func coapURL(_ path: String) -> String { "coap://127.0.0.1:\(coapPort)\(path)" }

    /// `iot-gateway check-config --config FILE`.
    static func checkConfig(_ path: String) async throws -> ProcessResult {
        try await ProcessRunner.run(try GatewayBinary.path(), ["check-config", "--config", path], timeout: .seconds(30))
    }
}

/// Everything one end-to-end test needs: a temp dir, a broker, a subscriber
/// (by default on `#` with a persistent session), and a gateway, connected
/// unless the broker is down at start. `run` tears it all down whatever
/// happens, and attaches the logs to any error.
struct EndToEnd {
    let directory: TemporaryDirectory
    let broker: MosquittoBroker
    let gateway: GatewayProcess
    let subscriber: Subscriber

    /// - Parameters:
    ///   - brokerDownAtStart: the subscriber's session is set up, then the
    ///     broker is stopped before the gateway starts (the test starts it
    ///     again with `broker.start()`).
    ///   - makeBroker: the broker, not started (e.g. `AWSLikeBroker.make`).
    static func run<T>(
        _ label: String,
        settings: GatewaySettings = GatewaySettings(),
        brokerDownAtStart: Bool = false,
        gatewayEnvironment: (TemporaryDirectory) async throws -> [String: String] = { _ in [:] },
        makeBroker: (TestCertificates, TemporaryDirectory) throws -> MosquittoBroker = {
            try MosquittoBroker(certificates: $0, directory: $1)
        },
        subscriberFilters: [String] = ["#"],
        persistentSubscriber: Bool = true,
        _ body: (EndToEnd) async throws -> T
    ) async throws -> T {
        let certificates = try await TestCertificates.shared()
        let directory = try TemporaryDirectory(label)
        let broker = try makeBroker(certificates, directory)
        let gateway = try GatewayProcess(
            settings: settings, brokerPort: broker.port, certificates: certificates, directory: directory
        )
        let subscriber = Subscriber(broker: broker, topicFilters: subscriberFilters, persistentSession: persistentSubscriber)
        func cleanup() async {
            await gateway.kill()
            await subscriber.stop()
            await broker.shutdown()
        }
        do {
            try await broker.start()
            try await subscriber.start()
            if brokerDownAtStart { try await broker.stop() }
            gateway.environment = try await gatewayEnvironment(directory)
            try await gateway.start()
            if !brokerDownAtStart {
                // QoS 0 readings sent before the first CONNACK would be dropped
                // (qos0_when_offline: drop); tests start from a connected gateway.
                try await gateway.waitUntilConnected()
            }
            let result = try await body(EndToEnd(directory: directory, broker: broker, gateway: gateway, subscriber: subscriber))
            await cleanup()
            directory.remove()
            return result
        } catch {
            await cleanup()
            let context = """
                \(error)
                ===== gateway log (\(directory.path)) =====
                \(tail(gateway.log, lines: 80))
                ===== broker log =====
                \(tail(broker.log, lines: 40))
                """
            directory.remove()
            throw HarnessError(context)
        }
    }
}
