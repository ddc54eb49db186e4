import Foundation

/// A stand-in for AWS IoT Core's Device Shadow service: the Python double
/// `Tests/Doubles/shadow_service.py` (Debian's python3-paho-mqtt) as a child
/// process, connected to the harness broker over mutual TLS as the test
/// subscriber identity. It answers get, update and delete requests on the
/// classic and named shadow topics of every thing the way AWS does
/// (`…/accepted`, `…/rejected`, `update/documents`, `update/delta`), from
/// shadows it keeps in memory. `Tests/Doubles/check_shadow_service.sh` checks
/// its behaviour against a real mosquitto.
///
/// With an `AWSLikeBroker`, its ACL must let `test-subscriber` read the
/// request topics (`$aws/things/+/shadow/#`) and `shadow-double/#`, and
/// write the answer topics. mosquitto 2.0 grants a subscription its ACL
/// forbids and then delivers nothing on it: a double without those rights
/// still reports ready, and the test only sees its requests time out. (A
/// subscription the broker does refuse makes the double exit.)
///
/// Its stdout holds the ready line; its stderr (`log`) one line per request
/// and per answer.
final class ShadowService {
    /// What the double prints once its subscriptions are in place: a request
    /// published earlier could go unseen.
    static let readyLine = "shadow-service ready"
    /// Anything published here makes the double drop requests unanswered (a
    /// service that stopped answering, for timeout tests) …
    static let pauseTopic = "shadow-double/pause"
    /// … until anything is published here.
    static let resumeTopic = "shadow-double/resume"

    let broker: MosquittoBroker
    let clientID: String
    let persistentSession: Bool
    let stdoutPath: String
    let stderrPath: String
    private var child: ChildProcess?

    private init(broker: MosquittoBroker, directory: TemporaryDirectory, clientID: String, persistentSession: Bool) {
        self.broker = broker
        self.clientID = clientID
        self.persistentSession = persistentSession
        stdoutPath = directory.file("\(clientID).out")
        stderrPath = directory.file("\(clientID).log")
    }

    /// A double that has subscribed to the shadow topics on `broker`.
    ///
    /// With a clean session (the default) it reconnects on its own after a
    /// broker restart, but misses requests published before it has
    /// subscribed again (within about a second of the broker's return): a
    /// gateway that reconnects first and sends what it kept for the outage
    /// races it. `persistentSession` closes that gap, as AWS's service has
    /// none: the broker (which persists sessions across its restarts) queues
    /// the requests for the double.
    static func started(
        broker: MosquittoBroker, directory: TemporaryDirectory, clientID: String = "shadow-double",
        persistentSession: Bool = false
    ) async throws -> ShadowService {
        let service = ShadowService(broker: broker, directory: directory, clientID: clientID, persistentSession: persistentSession)
        try await service.start()
        return service
    }

    deinit {
        // ChildProcess.deinit kills it.
        child = nil
    }

    var isRunning: Bool { child?.isRunning ?? false }

    private func start(timeout: Duration = .seconds(30)) async throws {
        let certificates = broker.certificates
        let script = try Self.scriptPath()
        var arguments = [
            script,
            "--host", "127.0.0.1", "--port", String(broker.port),
            "--cafile", certificates.caFile,
            "--cert", certificates.subscriber.certificate,
            "--key", certificates.subscriber.key,
            "--client-id", clientID,
        ]
        if persistentSession { arguments.append("--persistent-session") }
        let child = try ChildProcess(
            executable: try Self.interpreter(), arguments: arguments,
            stdoutPath: stdoutPath, stderrPath: stderrPath
        )
        self.child = child
        do {
            try await eventually(timeout: timeout, interval: .milliseconds(100), "'\(Self.readyLine)' from the shadow double") {
                if readText(self.stdoutPath).contains(Self.readyLine) { return true }
                if let status = child.exitStatus { throw HarnessError("the shadow double exited (\(status)) before it was ready") }
                return nil
            }
        } catch {
            await child.kill()
            self.child = nil
            throw HarnessError("\(error)\n--- shadow double stderr ---\n\(tail(self.log))\n--- broker log ---\n\(tail(broker.log))")
        }
    }

    /// SIGTERM and wait (SIGKILL if it is still there after 5 s).
    func stop() async {
        if let child { _ = await child.terminate(grace: .seconds(5)) }
        child = nil
    }

    /// Requests go unanswered from now on (the double has seen this before
    /// any request published after it returns: one broker, in order).
    func pause() async throws {
        try await broker.publish(topic: Self.pauseTopic, payload: Array("pause".utf8), qos: 1)
    }

    func resume() async throws {
        try await broker.publish(topic: Self.resumeTopic, payload: Array("resume".utf8), qos: 1)
    }

    /// One line per request and per answer, for failure messages.
    var log: String { readText(stderrPath) }

    // MARK: - Where the double is

    /// Debian's python3-paho-mqtt is installed for the system interpreter
    /// only; a `python3` earlier on PATH (pyenv, a venv) would not have it.
    private static let python = "/usr/bin/python3"

    private static func interpreter() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw HarnessError("\(python) not found: the shadow double needs Debian's python3 and python3-paho-mqtt")
        }
        return python
    }

    /// `Tests/Doubles/shadow_service.py`, found from this file
    /// (`Tests/IntegrationTests/Support/ShadowService.swift`).
    private static func scriptPath() throws -> String {
        let tests = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // Support/
            .deletingLastPathComponent()  // IntegrationTests/
            .deletingLastPathComponent()  // Tests/
        let script = tests.appendingPathComponent("Doubles/shadow_service.py").path
        guard FileManager.default.fileExists(atPath: script) else {
            throw HarnessError("the shadow double is not at \(script)")
        }
        return script
    }
}
