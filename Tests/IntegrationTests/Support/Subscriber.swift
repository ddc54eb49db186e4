import Foundation

/// One MQTT message as the subscriber saw it.
struct ReceivedMessage: Sendable, Equatable, CustomStringConvertible {
    var topic: String
    var payload: [UInt8]
    var qos: Int
    var retained: Bool

    var text: String { String(decoding: payload, as: UTF8.self) }

    var description: String {
        let shown = String(validating: payload, as: UTF8.self).map { "'\($0)'" }
            ?? "0x" + payload.map { String(format: "%02x", $0) }.joined()
        return "\(topic) q\(qos)\(retained ? " retained" : ""): \(shown.prefix(200))"
    }
}

/// `mosquitto_sub` over mutual TLS with a persistent session (`-c -i ID`, QoS
/// 1), so messages published while it is reconnecting after a broker restart
/// are queued for it rather than lost to the test. Output is one line per
/// message, `qos retain topic hexpayload`, appended to a file the test reads.
final class Subscriber {
    let broker: MosquittoBroker
    let clientID: String
    let topicFilter: String
    let outputPath: String
    private var child: ChildProcess?
    private var starts = 0
    private var stopped = false
    private var lastLaunch: ContinuousClock.Instant?
    /// How often mosquitto_sub had to be started again (see `supervise`).
    private(set) var relaunches = 0
    private static let probePrefix = "iot-it-probe/"

    init(broker: MosquittoBroker, topicFilter: String = "#") {
        self.broker = broker
        self.topicFilter = topicFilter
        clientID = "it-sub-" + UUID().uuidString.prefix(12).lowercased()
        outputPath = broker.directory.file("\(clientID).out")
    }

    /// A subscriber whose subscription is known to be active: it has received
    /// a probe published after it started.
    static func started(on broker: MosquittoBroker, topicFilter: String = "#") async throws -> Subscriber {
        let subscriber = Subscriber(broker: broker, topicFilter: topicFilter)
        try await subscriber.start()
        return subscriber
    }

    deinit { child = nil }

    func start(timeout: Duration = .seconds(15)) async throws {
        stopped = false
        let child = try launch()
        starts += 1
        let probeTopic = Self.probePrefix + clientID + "/\(starts)"
        var attempt = 0
        do {
            try await eventually(timeout: timeout, interval: .milliseconds(300), "mosquitto_sub to receive a probe on \(probeTopic)") {
                if let status = child.exitStatus { throw HarnessError("mosquitto_sub exited (\(status))") }
                if self.lines().contains(where: { $0.topic == probeTopic }) { return true }
                attempt += 1
                try await broker.publish(topic: probeTopic, payload: Array("probe \(attempt)".utf8), qos: 1)
                return nil
            }
        } catch {
            throw HarnessError("\(error)\n--- mosquitto_sub stderr ---\n\(tail(readText(outputPath + ".err")))\n--- broker log ---\n\(tail(broker.log))")
        }
    }

    private func launch() throws -> ChildProcess {
        let arguments = broker.clientArguments + [
            "-i", clientID, "-c", "-q", "1",
            "-t", topicFilter, "-t", Self.probePrefix + "#",
            "-F", "%q %r %t %x",
        ]
        let child = try ChildProcess(
            executable: try Tools.require(Tools.mosquittoSub), arguments: arguments,
            stdoutPath: outputPath, stderrPath: outputPath + ".err"
        )
        self.child = child
        lastLaunch = ContinuousClock.now
        return child
    }

    /// mosquitto_sub usually reconnects after a broker restart, but not
    /// always (it exits on e.g. "Protocol error" when the connection drops
    /// mid-packet, or "Connection refused" while the broker is still down).
    /// Its session lives on in the broker (persistent, persisted), so a new
    /// mosquitto_sub with the same client ID picks up where it left: relaunch
    /// it, at most once a second, while a test waits for messages.
    private func supervise() {
        guard !stopped, let child, child.exitStatus != nil else { return }
        if let lastLaunch, ContinuousClock.now - lastLaunch < .seconds(1) { return }
        relaunches += 1
        _ = try? launch()
    }

    func stop() async {
        stopped = true
        if let child { _ = await child.terminate(grace: .seconds(5)) }
        child = nil
    }

    /// Everything received so far (probes excluded), in arrival order.
    func messages() -> [ReceivedMessage] {
        lines().filter { !$0.topic.hasPrefix(Self.probePrefix) }
    }

    /// Waits until at least `count` messages have arrived and returns them all.
    @discardableResult
    func waitFor(count: Int, timeout: Duration = .seconds(30)) async throws -> [ReceivedMessage] {
        try await waitUntil(timeout: timeout, "\(count) message(s)") { $0.count >= count }
    }

    /// Waits until `condition` holds for the messages received so far.
    @discardableResult
    func waitUntil(
        timeout: Duration = .seconds(30),
        _ what: String,
        _ condition: ([ReceivedMessage]) -> Bool
    ) async throws -> [ReceivedMessage] {
        do {
            return try await eventually(timeout: timeout, interval: .milliseconds(100), "subscriber: \(what)") {
                supervise()
                let received = messages()
                return condition(received) ? received : nil
            }
        } catch {
            let received = messages()
            throw HarnessError("""
                \(error); received \(received.count) (mosquitto_sub relaunched \(relaunches) times):
                \(received.suffix(20).map { "  \($0)" }.joined(separator: "\n"))
                --- mosquitto_sub stderr ---
                \(tail(readText(outputPath + ".err"), lines: 10))
                --- broker log ---
                \(tail(broker.log, lines: 30))
                """)
        }
    }

    /// Waits `duration` and returns what arrived: for "nothing more arrives".
    func settle(for duration: Duration = .seconds(1)) async throws -> [ReceivedMessage] {
        try await Task.sleep(for: duration)
        return messages()
    }

    private func lines() -> [ReceivedMessage] {
        let text = readText(outputPath)
        // Only complete lines: mosquitto_sub may be in the middle of one.
        guard let end = text.lastIndex(of: "\n") else { return [] }
        return text[..<end].split(separator: "\n").compactMap(Self.parse)
    }

    /// `qos retain topic hex`: topic may contain spaces, hex never does.
    static func parse(_ line: Substring) -> ReceivedMessage? {
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let qos = Int(parts[0]), let retain = Int(parts[1]) else { return nil }
        let rest = parts[2]
        guard let space = rest.lastIndex(of: " ") else { return nil }
        let topic = String(rest[..<space])
        guard let payload = hexBytes(rest[rest.index(after: space)...]) else { return nil }
        return ReceivedMessage(topic: topic, payload: payload, qos: qos, retained: retain != 0)
    }
}

func hexBytes(_ text: Substring) -> [UInt8]? {
    guard text.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.count / 2)
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
        bytes.append(byte)
        index = next
    }
    return bytes
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
