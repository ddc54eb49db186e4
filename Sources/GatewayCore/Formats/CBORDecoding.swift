/// Turns CBOR bytes into a `StructuredValue`. The decoder itself lives in
/// the CBORCodec adapter (libcbor); the core only knows this protocol.
public protocol CBORDecoding: Sendable {
    func decode(_ bytes: [UInt8]) -> Result<StructuredValue, FormatError>
}
