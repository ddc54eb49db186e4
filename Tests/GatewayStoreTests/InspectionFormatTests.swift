import Testing
@testable import GatewayStore

@Suite("Inspection: formatting for operators")
struct InspectionFormatTests {
    @Test("RFC 3339 with milliseconds in UTC, from integer milliseconds", arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(1), "1970-01-01T00:00:00.001Z"),
        (Int64(-1), "1969-12-31T23:59:59.999Z"),
        (Int64(951_782_400_000), "2000-02-29T00:00:00.000Z"),
        (Int64(1_709_164_799_999), "2024-02-28T23:59:59.999Z"),
        (Int64(1_709_251_199_999), "2024-02-29T23:59:59.999Z"),
        (Int64(1_760_000_000_123), "2025-10-09T08:53:20.123Z"),
        (Int64(4_102_444_800_000), "2100-01-01T00:00:00.000Z"),
    ])
    func rfc3339(millis: Int64, expected: String) {
        #expect(EpochMillis(millis).rfc3339 == expected)
    }

    @Test("ages", arguments: [
        (Int64(0), "0ms"), (Int64(850), "850ms"), (Int64(1000), "1.0s"), (Int64(12_345), "12.3s"),
        (Int64(60_000), "1m00s"), (Int64(192_000), "3m12s"), (Int64(7_500_000), "2h05m"),
        (Int64(356_400_000), "4d03h"), (Int64(-1500), "-1.5s"),
    ])
    func ages(millis: Int64, expected: String) {
        #expect(InspectionFormat.age(milliseconds: millis) == expected)
    }

    @Test("sizes", arguments: [
        (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (58_061, "56.7 KiB"),
        (50_028_890, "47.7 MiB"), (3 * 1024 * 1024 * 1024, "3.0 GiB"),
    ])
    func sizes(bytes: Int, expected: String) {
        #expect(InspectionFormat.bytes(bytes) == expected)
    }

    @Test("payload previews: text escaped and cut, binary as hex")
    func payloads() {
        #expect(DisplayText.payload(Array(#"{"t":21.5}"#.utf8)) == #"{"t":21.5}"#)
        #expect(DisplayText.payload(Array("a\tb\r\nc\\".utf8)) == #"a\tb\r\nc\\"#)
        #expect(DisplayText.payload(Array("grüße 温度".utf8)) == "grüße 温度")
        #expect(DisplayText.payload([]) == "(empty)")
        let long = String(repeating: "x", count: 100)
        #expect(DisplayText.payload(Array(long.utf8)) == String(repeating: "x", count: 60) + "…")
        #expect(DisplayText.payload(Array(String(repeating: "x", count: 60).utf8)) == String(repeating: "x", count: 60))
        // A terminal escape or a NUL makes it binary; so does invalid UTF-8.
        #expect(DisplayText.payload([0x1B, 0x5B, 0x32, 0x4A]) == "hex:1b5b324a")
        #expect(DisplayText.payload([0x61, 0x00, 0x62]) == "hex:610062")
        #expect(DisplayText.payload([0xFF, 0xFE, 0x00, 0x01]) == "hex:fffe0001")
        #expect(DisplayText.payload(Array(0..<20)) == "hex:000102030405060708090a0b0c0d0e0f…")
    }

    @Test("strings from devices cannot reach the terminal raw")
    func escaping() {
        #expect(DisplayText.escaped("dt/a\u{1B}[2J") == "dt/a\\u{1B}[2J")
        #expect(DisplayText.escaped("x\u{202E}y") == "x\\u{202E}y")
        #expect(DisplayText.escaped("x\u{9B}y") == "x\\u{9B}y")
        #expect(DisplayText.escaped("plain/topic") == "plain/topic")
    }

    @Test("finds the lock holder's pid in /proc/locks")
    func procLocks() {
        let text = """
            1: FLOCK  ADVISORY  WRITE 30931 fe:00:16261688 0 EOF
            1: -> FLOCK  ADVISORY  WRITE 555 fe:00:777 0 EOF
            2: POSIX  ADVISORY  WRITE 30746 fe:00:777 1073741824 1073742335
            3: FLOCK  ADVISORY  WRITE 4242 fe:00:777 0 EOF
            4: FLOCK  ADVISORY  READ 4343 08:01:999 0 EOF
            """
        let device = UInt64(0xfe00)
        #expect(LockHolder.pid(in: text, device: device, inode: 777) == 4242)
        #expect(LockHolder.pid(in: text, device: device, inode: 16_261_688) == 30931)
        #expect(LockHolder.pid(in: text, device: UInt64(0x0801), inode: 999) == nil, "a shared lock is no gateway")
        #expect(LockHolder.pid(in: text, device: device, inode: 1) == nil)
        // glibc's dev_t layout: major 259, minor 65536 + 3.
        let large = (UInt64(259 & 0xfff) << 8) | UInt64(3 & 0xff) | (UInt64((65536 + 3) & ~0xff) << 12)
        #expect(LockHolder.major(large) == 259)
        #expect(LockHolder.minor(large) == 65539)
    }
}
