import Foundation
import GatewayCore
@testable import GatewayRuntime
import Logging
import Testing

/// The log line format: journal priorities, timestamps, logfmt quoting.
@Suite("Log lines")
struct LogLineTests {
    static func line(
        _ level: Logger.Level = .info, _ message: String = "gateway ready", _ metadata: Logger.Metadata = [:],
        timestamp: String? = "2026-12-03T06:10:40.123Z"
    ) -> String {
        LogLine.format(level: level, label: "iot-gateway", message: message, metadata: metadata, timestamp: timestamp)
    }

    @Test func journalPrioritiesFollowSyslog() {
        let expected: [(Logger.Level, Int)] = [
            (.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
        ]
        for (level, priority) in expected {
            #expect(LogLine.priority(level) == priority, "\(level)")
            #expect(Self.line(level, timestamp: nil).hasPrefix("<\(priority)>\(level.rawValue) iot-gateway: "))
        }
    }

    @Test func theJournalFormHasNoTimestampTheOtherOneHas() {
        #expect(Self.line(.warning, "upstream connection lost", ["reason": "connection lost"], timestamp: nil)
            == "<4>warning iot-gateway: upstream connection lost reason=\"connection lost\"\n")
        #expect(Self.line(.warning, "upstream connection lost", ["reason": "connection lost"])
            == "2026-12-03T06:10:40.123Z warning iot-gateway: upstream connection lost reason=\"connection lost\"\n")
    }

    @Test func messageFirstThenMetadataSortedByKey() {
        let line = Self.line(.info, "gateway ready", ["outbox.depth": "0", "gateway.name": "gw-01", "a": "1"], timestamp: nil)
        #expect(line == "<6>info iot-gateway: gateway ready a=1 gateway.name=gw-01 outbox.depth=0\n")
    }

    @Test(arguments: [
        ("plain", "plain"),
        ("dt/sensors/k1/temperature", "dt/sensors/k1/temperature"),
        ("", #""""#),
        ("two words", #""two words""#),
        ("a=b", #""a=b""#),
        (#"say "hi""#, #""say \"hi\"""#),
        (#"C:\path"#, #""C:\\path""#),
        ("line1\nline2", #""line1\nline2""#),
        ("tab\there", #""tab\there""#),
        ("cr\r", #""cr\r""#),
        ("bell\u{7}", #""bell\u0007""#),
        ("del\u{7F}", #""del\u007f""#),
        ("sep\u{2028}x", #""sep\u2028x""#),
        ("température", "température"),
    ])
    func valuesAreQuotedOnlyWhenNeeded(_ value: String, _ written: String) {
        var line = ""
        LogLine.appendValue(value, to: &line)
        #expect(line == written)
        #expect(!line.contains("\n") && !line.contains("\r"))
    }

    @Test func noValueKeyOrMessageCanBreakTheLine() {
        let line = Self.line(.error, "failed\nbadly", [
            "error": "first\nsecond\r\nthird",
            "bad key\n=": "x",
            "list": .array(["a b", "c"]),
            "nested": .dictionary(["k": "v\n"]),
            "number": .stringConvertible(42),
        ])
        #expect(line.filter { $0 == "\n" }.count == 1 && line.hasSuffix("\n"), "\(line)")
        #expect(line.contains(#"error="first\nsecond\r\nthird""#), "\(line)")
        #expect(line.contains("bad_key__=x"), "\(line)")
        #expect(line.contains(#"list="[a b, c]""#), "\(line)")
        #expect(line.contains(#"nested="[k: v\n]""#), "\(line)")
        #expect(line.contains("number=42"), "\(line)")
        #expect(line.contains(#"iot-gateway: failed\nbadly "#), "\(line)")
    }

    @Test func timestampsAreUTCWithMilliseconds() {
        #expect(LogTimestamp.format(seconds: 1_796_278_240, milliseconds: 7) == "2026-12-03T06:10:40.007Z")
        #expect(LogTimestamp.format(seconds: 0, milliseconds: 999) == "1970-01-01T00:00:00.999Z")
        let now = LogTimestamp.now()
        #expect(now.count == 24 && now.hasSuffix("Z"), "\(now)")
    }

    @Test func theHandlerMergesMetadataAndKeepsLevels() {
        let output = LogOutput.memory()
        var logger = Logger(label: "iot-gateway") { label in
            GatewayLogHandler(label: label, level: .info, journal: true, output: output)
        }
        logger[metadataKey: "mqtt.connection"] = "0"
        logger.debug("not shown")
        logger.info("upstream connected", metadata: ["mqtt.host": "broker one"])
        logger.warning("upstream connection lost", metadata: ["mqtt.connection": "1"])
        #expect(output.lines == [
            "<6>info iot-gateway: upstream connected mqtt.connection=0 mqtt.host=\"broker one\"\n",
            "<4>warning iot-gateway: upstream connection lost mqtt.connection=1\n",
        ])
    }

    @Test func theJournalIsRecognisedOnlyByItsDeviceAndInode() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let descriptor = open(path, O_WRONLY)
        #expect(descriptor >= 0)
        defer { close(descriptor) }
        var info = stat()
        #expect(fstat(descriptor, &info) == 0)
        let device = UInt64(info.st_dev), inode = UInt64(info.st_ino)

        #expect(JournalStream.names("\(device):\(inode)", descriptor: descriptor))
        #expect(!JournalStream.names("\(device):\(inode + 1)", descriptor: descriptor))
        #expect(!JournalStream.names("\(device + 1):\(inode)", descriptor: descriptor))
        #expect(!JournalStream.names(nil, descriptor: descriptor))
        for malformed in ["", ":", "\(device)", "\(device):", ":\(inode)", "\(device):\(inode):1", "x:\(inode)", "\(device) :\(inode)"] {
            #expect(!JournalStream.names(malformed, descriptor: descriptor), "\(malformed)")
        }
        let parsed = try #require(JournalStream.parse("8:12345"))
        #expect(parsed.device == 8 && parsed.inode == 12345)
    }
}
