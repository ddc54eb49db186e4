/// Reads a fuzz input from front to back; every read may come up short.
struct ByteReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { bytes.isEmpty }

    mutating func byte() -> UInt8? {
        bytes.popFirst()
    }

    /// The next `count` bytes, or nil (and nothing read) when fewer remain.
    mutating func bytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, bytes.count >= count else { return nil }
        defer { bytes = bytes.dropFirst(count) }
        return bytes.prefix(count)
    }

    /// A big-endian 16-bit length, then that many bytes.
    mutating func chunk() -> ArraySlice<UInt8>? {
        guard let length = bytes(2) else { return nil }
        return bytes(Int(length[length.startIndex]) << 8 | Int(length[length.startIndex + 1]))
    }

    mutating func rest() -> ArraySlice<UInt8> {
        defer { bytes = bytes[bytes.endIndex...] }
        return bytes
    }
}
