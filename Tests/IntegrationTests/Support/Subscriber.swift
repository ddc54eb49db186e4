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

/// One message with the time `mosquitto_sub` handled it.
struct TimedMessage: Sendable, CustomStringConvertible {
    /// Seconds since the Unix epoch (mosquitto_sub's `%U`, nanoseconds).
    var time: Double
    var message: ReceivedMessage

    var topic: String { message.topic }
    var text: String { message.text }
    var description: String { String(format: "%.6f ", time) + message.description }
}

/// `mosquitto_sub` over mutual TLS (as the test subscriber identity), QoS 1,
/// on one or more topic filters (`#` does not match `$aws/...` topics, so a
/// test of Basic Ingest and shadow topics subscribes to `$aws/#` too). By
/// default with a persistent session (`-c -i ID`), so messages published
/// while it is reconnecting after a broker restart are queued for it rather
/// than lost to the test. Output is one line per message, `time qos retain
/// topic hexpayload` (the receive time for tests that count rates), appended
/// to a file the test reads.
final class Subscriber {
    let broker: MosquittoBroker
    let clientID: String
    let topicFilters: [String]
    let persistentSession: Bool
    let outputPath: String
    private var child: ChildProcess?
    private var starts = 0
    private var stopped = false
    private var lastLaunch: ContinuousClock.Instant?
    /// What `lines()` has read of the output file so far.
    private var parsed: [TimedMessage] = []
    private var parsedBytes: UInt64 = 0
    /// How often mosquitto_sub had to be started again (see `supervise`).
    private(set) var relaunches = 0
    private static let probePrefix = "iot-it-probe/"

    init(broker: MosquittoBroker, topicFilters: [String] = ["#"], persistentSession: Bool = true) {
        self.broker = broker
        self.topicFilters = topicFilters
        self.persistentSession = persistentSession
        clientID = "it-sub-" + UUID().uuidString.prefix(12).lowercased()
        outputPath = broker.directory.file("\(clientID).out")
    }

    /// A subscriber whose subscription is known to be active: it has received
    /// a probe published after it started.
    static func started(
        on broker: MosquittoBroker, topicFilters: [String] = ["#"], persistentSession: Bool = true
    ) async throws -> Subscriber {
        let subscriber = Subscriber(broker: broker, topicFilters: topicFilters, persistentSession: persistentSession)
        try await subscriber.start()
        return subscriber
    }

    deinit { child = nil }

    func start(timeout: Duration = .seconds(60)) async throws {
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
        var arguments = broker.clientArguments + ["-i", clientID, "-q", "1", "-F", "%U %q %r %t %x"]
        if persistentSession { arguments.append("-c") }
        for filter in topicFilters + [Self.probePrefix + "#"] { arguments += ["-t", filter] }
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
        timedMessages().map(\.message)
    }

    /// The same, with each message's receive time.
    func timedMessages() -> [TimedMessage] {
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

    /// Like `waitFor(count:)`, with each message's receive time.
    @discardableResult
    func waitForTimed(count: Int, timeout: Duration = .seconds(30)) async throws -> [TimedMessage] {
        try await waitFor(count: count, timeout: timeout)
        return timedMessages()
    }

    /// Waits `duration` and returns what arrived: for "nothing more arrives".
    func settle(for duration: Duration = .seconds(1)) async throws -> [ReceivedMessage] {
        try await Task.sleep(for: duration)
        return messages()
    }

    /// Like `settle(for:)`, with each message's receive time.
    func settleTimed(for duration: Duration = .seconds(1)) async throws -> [TimedMessage] {
        try await Task.sleep(for: duration)
        return timedMessages()
    }

    /// Everything received so far, probes included. Reads only what was
    /// appended since the last call: tests poll this every 100 ms, and
    /// re-parsing tens of thousands of lines each time would take a good
    /// part of a core from the gateway under test.
    private func lines() -> [TimedMessage] {
        guard let handle = FileHandle(forReadingAtPath: outputPath) else { return parsed }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: parsedBytes)) != nil, let data = try? handle.readToEnd(),
              // Only complete lines: mosquitto_sub may be in the middle of one.
              let end = data.lastIndex(of: UInt8(ascii: "\n")) else { return parsed }
        let complete = data[data.startIndex...end]
        parsedBytes += UInt64(complete.count)
        parsed += String(decoding: complete, as: UTF8.self).split(separator: "\n").compactMap(Self.parse)
        return parsed
    }

    /// `time qos retain topic hex`: the topic may contain spaces, hex never does.
    static func parse(_ line: Substring) -> TimedMessage? {
        let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, let time = Double(parts[0]), let qos = Int(parts[1]), let retain = Int(parts[2]) else { return nil }
        let rest = parts[3]
        guard let space = rest.lastIndex(of: " ") else { return nil }
        let topic = String(rest[..<space])
        guard let payload = hexBytes(rest[rest.index(after: space)...]) else { return nil }
        return TimedMessage(time: time, message: ReceivedMessage(topic: topic, payload: payload, qos: qos, retained: retain != 0))
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
