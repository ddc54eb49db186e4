import Foundation
import GatewayCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 12's logs, from the real gateway: journal priorities when stderr is
/// the journal (as systemd announces it with `JOURNAL_STREAM`), timestamps
/// otherwise, the version line at start, logfmt quoting, and a broker's
/// refusal of a publish naming the message's topic and mapping.
@Suite("Log format end to end")
struct LogFormatEndToEndTests {
    /// `device:inode` of the file at `path`, as systemd writes `JOURNAL_STREAM`.
    static func journalStream(of path: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { throw HarnessError("cannot stat \(path)") }
        return "\(info.st_dev):\(info.st_ino)"
    }

    /// The log file the harness gives the gateway's first start (it opens it
    /// with O_APPEND, so a file made now keeps its inode).
    static func firstLog(_ directory: TemporaryDirectory) throws -> String {
        let path = directory.file("gateway.1.log")
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw HarnessError("cannot create \(path)") }
        return path
    }

    static func lines(_ log: String) -> [Substring] {
        log.split(separator: "\n")
    }

    /// `2026-12-03T06:10:40.123Z ` at the start of a line.
    static func hasTimestamp(_ line: Substring) -> Bool {
        let bytes = Array(line.utf8.prefix(25))
        guard bytes.count == 25 else { return false }
        let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22]
        let text = String(decoding: bytes, as: UTF8.self)
        return digits.allSatisfy { bytes[$0] >= UInt8(ascii: "0") && bytes[$0] <= UInt8(ascii: "9") }
            && text.hasSuffix("Z ") && bytes[10] == UInt8(ascii: "T") && bytes[19] == UInt8(ascii: ".")
    }

    /// The syslog priority a line starts with, if any.
    static func priority(_ line: Substring) -> Int? {
        guard line.hasPrefix("<"), let close = line.firstIndex(of: ">") else { return nil }
        return Int(line[line.index(after: line.startIndex)..<close])
    }

    @Test("stderr is the journal (JOURNAL_STREAM names it): every line has its <N> priority and no timestamp; <6> for info, <4> for a warning; the version at start")
    func journalPriorities() async throws {
        try await EndToEnd.run("logs-journal", gatewayEnvironment: { directory in
            ["JOURNAL_STREAM": try Self.journalStream(of: try Self.firstLog(directory))]
        }) { env in
            let gateway = env.gateway
            // The broker going away is a warning.
            try await env.broker.stop()
            let log = try await eventually(timeout: .seconds(30), "'upstream connection lost' in the log") {
                gateway.currentLog.contains("upstream connection lost") ? gateway.currentLog : nil
            }
            let lines = Self.lines(log)
            #expect(lines.count >= 5, "\(log)")
            for line in lines {
                let priority = Self.priority(line)
                #expect(priority.map { (2...7).contains($0) } == true, "no priority: \(line)")
                #expect(!Self.hasTimestamp(line.drop { $0 != ">" }.dropFirst()), "a timestamp in the journal form: \(line)")
            }
            let starting = try #require(lines.first { $0.contains("gateway starting") }, "\(log)")
            #expect(starting.hasPrefix("<6>info iot-gateway: gateway starting "), "\(starting)")
            #expect(starting.contains("gateway.version=\(GatewayVersion.string)") && starting.contains("gateway.commit="), "\(starting)")
            let ready = try #require(lines.firstIndex { $0.hasPrefix("<6>info iot-gateway: gateway ready ") }, "\(log)")
            #expect(lines.firstIndex(of: starting)! < ready, "the version comes before 'gateway ready':\n\(log)")
            #expect(lines.filter { $0.contains("gateway starting") }.count == 1)
            let lost = try #require(lines.first { $0.contains("upstream connection lost") })
            #expect(lost.hasPrefix("<4>warning iot-gateway: upstream connection lost "), "\(lost)")
            // A value with spaces is quoted.
            #expect(lost.contains(#"reason=""#), "\(lost)")
            print("journal form: \(starting)\njournal form: \(lost)")
        }
    }

    @Test("JOURNAL_STREAM naming another file (inherited, stderr redirected), then not set: no priority prefix, a UTC timestamp on every line")
    func noJournal() async throws {
        let decoy = try TemporaryDirectory("logs-decoy")
        defer { decoy.remove() }
        let other = try decoy.write("", to: "elsewhere.log")
        try await EndToEnd.run("logs-plain", gatewayEnvironment: { _ in
            ["JOURNAL_STREAM": try Self.journalStream(of: other)]
        }) { env in
            let gateway = env.gateway
            func check(_ log: String, _ what: String) throws {
                let lines = Self.lines(log)
                #expect(lines.count >= 4, "\(what): \(log)")
                for line in lines {
                    #expect(Self.priority(line) == nil && !line.hasPrefix("<"), "\(what): a priority prefix: \(line)")
                    #expect(Self.hasTimestamp(line), "\(what): no timestamp: \(line)")
                }
                let starting = try #require(lines.first { $0.contains("gateway starting") }, "\(what): \(log)")
                #expect(starting.dropFirst(25).hasPrefix("info iot-gateway: gateway starting "), "\(what): \(starting)")
                #expect(starting.contains("gateway.version=\(GatewayVersion.string)"), "\(what): \(starting)")
            }
            try check(gateway.currentLog, "JOURNAL_STREAM of another file")

            await gateway.terminate()
            gateway.environment = [:]
            try await gateway.start()
            try await gateway.waitUntilConnected()
            let log = gateway.currentLog
            try check(log, "no JOURNAL_STREAM")
            print("plain form: \(Self.lines(log).first { $0.contains("gateway ready") } ?? "")")
        }
    }

    static let refusalMappings = """
        - name: granted
          resource: /ok/{device}
          auth: anonymous
          topic: dt/ok/{device}
          qos: 1
        - name: not granted
          resource: /denied/{device}
          auth: anonymous
          topic: dt/denied/{device}
          qos: 1

        """

    @Test("MQTT 5: a publish the broker refuses for good (PUBACK 0x87, ACL) is logged with its topic and its mapping, quoted where they hold spaces")
    func refusalNamesTopicAndMapping() async throws {
        var settings = GatewaySettings()
        settings.mappings = Self.refusalMappings
        settings.upstreamExtra = ["protocol: mqtt5"]
        try await AWSLikeEndToEnd.run(
            "logs-refusal", settings: settings,
            gatewayWrites: ["dt/ok/+"], subscriberReads: ["dt/#"], filters: ["dt/#"], mqtt5: true
        ) { env in
            let gateway = env.gateway
            let denied = try await HTTP.request("POST", gateway.httpURL("/denied/dev%201"), body: Array("no".utf8))
            #expect(denied.status == 202, "\(denied)")
            let granted = try await HTTP.request("POST", gateway.httpURL("/ok/dev2"), body: Array("yes".utf8))
            #expect(granted.status == 202, "\(granted)")

            let line = try await eventually(timeout: .seconds(30), "the refusal in the gateway log") {
                Self.lines(gateway.currentLog).first { $0.contains("broker refused a message for good; dropping it") }
            }
            #expect(line.contains(#"mqtt.topic="dt/denied/dev 1""#), "\(line)")
            #expect(line.contains(#"mapping="not granted""#), "\(line)")
            #expect(line.contains("mqtt.reason_code=0x87"), "\(line)")
            #expect(line.contains(" error iot-gateway: broker refused a message for good; dropping it "), "\(line)")

            let received = try await env.subscriber.waitFor(count: 1)
            #expect(received.map(\.topic) == ["dt/ok/dev2"], "\(received)")
            let metrics = try await gateway.waitForMetrics("the refusal counted") {
                $0.value("iotgw_broker_refusals_total", ["reason_code": "0x87"]) == 1
            }
            #expect(metrics.value("iotgw_messages_accepted_by_mapping_total", ["mapping": "not granted", "qos": "1"]) == 1)
            #expect(metrics.value("iotgw_messages_accepted_by_mapping_total", ["mapping": "granted", "qos": "1"]) == 1)
            #expect(metrics.value("iotgw_messages_dropped_total", ["reason": "rejected", "qos": "1"]) == 1)
            #expect(try await env.subscriber.settle(for: .milliseconds(500)).map(\.topic) == ["dt/ok/dev2"])
            print("refusal: \(line)")
        }
    }
}
