import Crypto
import Foundation

/// A SHA-256 value: token hashes and certificate fingerprints.
public struct Digest: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    public static func sha256<Bytes: Sequence<UInt8>>(_ data: Bytes) -> Digest {
        Digest(unchecked: Array(SHA256.hash(data: Array(data))))
    }

    private init(unchecked bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Parses 64 hex digits, optionally in pairs separated by `:` (as
    /// `openssl x509 -fingerprint -sha256` prints them), any case.
    public init?(hex text: String) {
        let compact = text.replacingOccurrences(of: ":", with: "")
        guard let bytes = Hex.decode(compact) else { return nil }
        self.init(bytes: bytes)
    }

    /// Lower-case hex, as the registry stores it.
    public var hex: String { Hex.encode(bytes) }

    /// Colon-separated upper-case pairs, as OpenSSL prints fingerprints.
    public var fingerprintText: String {
        bytes.map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    public var description: String { hex }

    /// Compares in time that does not depend on where the values differ.
    public func constantTimeEquals(_ other: Digest) -> Bool {
        Secrets.constantTimeEquals(bytes, other.bytes)
    }
}

/// Hex codec for the registry's binary values.
public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Nil unless `text` is an even number of hex digits (either case).
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(chars.count / 2)
        var index = 0
        while index < chars.count {
            guard let high = nibble(chars[index]), let low = nibble(chars[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return char - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return char - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return char - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Making and checking device secrets.
public enum Secrets {
    /// Bytes of randomness in a token: 256 bits.
    public static let tokenBytes = 32
    /// Characters in a generated PSK. It is text (letters and digits) so that
    /// tools that take the key as text, such as `coap-client -k`, take it as
    /// printed: 32 characters of 62 are about 190 bits.
    public static let pskLength = 32

    /// A new bearer token: 32 random bytes, base64url without padding (43 characters).
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<tokenBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A new pre-shared key, as text.
    public static func newPSK() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        // `randomElement(using:)` draws uniformly, with no modulo bias.
        return String((0..<pskLength).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// What the registry stores for a token.
    public static func tokenHash(_ token: String) -> Digest {
        Digest.sha256(Array(token.utf8))
    }

    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
