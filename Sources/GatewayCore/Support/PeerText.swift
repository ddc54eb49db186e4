/// A peer's address as the text logs, envelopes and duplicate detection use.
public enum PeerText {
    /// Written digit by digit: this runs for every request (CoAP and HTTP), and
    /// `inet_ntop` formats IPv4 through `sprintf` (about 1 % of the gateway's
    /// CPU under load, with the buffer and the interpolation).
    public static func ipv4(_ address: UInt32, port: UInt16) -> String {
        String(unsafeUninitializedCapacity: 21) { buffer in
            var count = 0
            func put(_ value: UInt32) {
                if value >= 100 { buffer[count] = UInt8(48 + value / 100); count += 1 }
                if value >= 10 { buffer[count] = UInt8(48 + value / 10 % 10); count += 1 }
                buffer[count] = UInt8(48 + value % 10); count += 1
            }
            for shift in stride(from: 24, through: 0, by: -8) {
                put((address >> UInt32(shift)) & 0xFF)
                buffer[count] = shift == 0 ? UInt8(ascii: ":") : UInt8(ascii: "."); count += 1
            }
            var digits = 1
            var rest = port / 10
            while rest > 0 { digits += 1; rest /= 10 }
            var value = port
            for index in stride(from: count + digits - 1, through: count, by: -1) {
                buffer[index] = UInt8(48 + value % 10); value /= 10
            }
            return count + digits
        }
    }
}
