import Foundation

/// One message with the time `mosquitto_sub` handled it.
struct TimedMessage: Sendable, CustomStringConvertible {
    /// Seconds since the Unix epoch (mosquitto_sub's `%U`, nanoseconds).
    var time: Double
    var message: ReceivedMessage

    var topic: String { message.topic }
    var text: String { message.text }
    var description: String { String(format: "%.6f ", time) + message.description }
}

/// `mosquitto_sub` over mutual TLS (as the test subscriber identity) on
/// several topic filters at once — `#` does not match `$aws/...` topics, so
/// a test of Basic Ingest and shadow topics subscribes to `$aws/#` too — with
/// each message's receive time (`-F '%U ...'`). QoS 1, clean session: for
/// tests whose broker stays up. Ready once a probe published after it
/// started has come back.
final class TimedSubscriber {
    let broker: MosquittoBroker
    let clientID: String
    let filters: [String]
    let outputPath: String
    private var child: ChildProcess?
    private var parsed: [TimedMessage] = []
    private var parsedBytes: UInt64 = 0
    private static let probePrefix = "iot-it-probe/"

    init(broker: MosquittoBroker, filters: [String]) {
        self.broker = broker
        self.filters = filters
        clientID = "it-tsub-" + UUID().uuidString.prefix(12).lowercased()
        outputPath = broker.directory.file("\(clientID).out")
    }

    static func started(on broker: MosquittoBroker, filters: [String]) async throws -> TimedSubscriber {
        let subscriber = TimedSubscriber(broker: broker, filters: filters)
        try await subscriber.start()
        return subscriber
    }

    deinit { child = nil }

    func start(timeout: Duration = .seconds(15)) async throws {
        var arguments = broker.clientArguments + ["-i", clientID, "-q", "1", "-F", "%U %q %r %t %x"]
        for filter in filters + [Self.probePrefix + "#"] { arguments += ["-t", filter] }
        let child = try ChildProcess(
            executable: try Tools.require(Tools.mosquittoSub), arguments: arguments,
            stdoutPath: outputPath, stderrPath: outputPath + ".err"
        )
        self.child = child
        let probeTopic = Self.probePrefix + clientID
        var attempt = 0
        do {
            try await eventually(timeout: timeout, interval: .milliseconds(300), "mosquitto_sub to receive a probe on \(probeTopic)") {
                if let status = child.exitStatus { throw HarnessError("mosquitto_sub exited (\(status))") }
                if self.all().contains(where: { $0.topic == probeTopic }) { return true }
                attempt += 1
                try await broker.publish(topic: probeTopic, payload: Array("probe \(attempt)".utf8), qos: 1)
                return nil
            }
        } catch {
            throw HarnessError("\(error)\n--- mosquitto_sub stderr ---\n\(tail(readText(outputPath + ".err")))\n--- broker log ---\n\(tail(broker.log))")
        }
    }

    func stop() async {
        if let child { _ = await child.terminate(grace: .seconds(5)) }
        child = nil
    }

    /// Everything received so far (probes excluded), in arrival order.
    func messages() -> [TimedMessage] {
        all().filter { !$0.topic.hasPrefix(Self.probePrefix) }
    }

    @discardableResult
    func waitFor(count: Int, timeout: Duration = .seconds(30)) async throws -> [TimedMessage] {
        do {
            return try await eventually(timeout: timeout, interval: .milliseconds(100), "subscriber: \(count) message(s)") {
                if let status = child?.exitStatus { throw HarnessError("mosquitto_sub exited (\(status))") }
                let received = messages()
                return received.count >= count ? received : nil
            }
        } catch {
            let received = messages()
            throw HarnessError("""
                \(error); received \(received.count):
                \(received.suffix(10).map { "  \(String(describing: $0).prefix(300))" }.joined(separator: "\n"))
                --- mosquitto_sub stderr ---
                \(tail(readText(outputPath + ".err"), lines: 10))
                --- broker log ---
                \(tail(broker.log, lines: 30))
                """)
        }
    }

    /// Waits `duration` and returns what arrived: for "nothing more arrives".
    func settle(for duration: Duration = .seconds(1)) async throws -> [TimedMessage] {
        try await Task.sleep(for: duration)
        return messages()
    }

    /// Reads only what was appended since the last call, complete lines only.
    private func all() -> [TimedMessage] {
        guard let handle = FileHandle(forReadingAtPath: outputPath) else { return parsed }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: parsedBytes)) != nil, let data = try? handle.readToEnd(),
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
        guard let payload = hexBytes(rest[rest.index(after: space)...]) else { return nil }
        let message = ReceivedMessage(topic: String(rest[..<space]), payload: payload, qos: qos, retained: retain != 0)
        return TimedMessage(time: time, message: message)
    }
}

/// Counting over receive times.
enum RateWindows {
    /// The most times (sorted ascending) inside any half-open window
    /// `[t, t + width)`.
    static func maxInWindow(_ times: [Double], width: Double) -> Int {
        var best = 0, start = 0
        for end in times.indices {
            while times[end] - times[start] >= width { start += 1 }
            best = max(best, end - start + 1)
        }
        return best
    }

    /// The shortest span covering `count` consecutive times; nil if there are
    /// fewer. With `count = quota + 1`, a value at or above the window width
    /// means the quota was kept, and says by how much.
    static func shortestSpan(_ times: [Double], covering count: Int) -> Double? {
        guard count >= 1, times.count >= count else { return nil }
        return (0...(times.count - count)).map { times[$0 + count - 1] - times[$0] }.min()
    }
}
