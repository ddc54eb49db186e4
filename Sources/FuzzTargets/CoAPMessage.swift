import CoAPIngress

/// A tiny decoder for CoAP messages in their UDP form (RFC 7252 §3): the
/// `coap_request` target's inputs are real datagrams, and this stands in
/// for libcoap's parser, which the fuzz target does not link into the loop.
/// It keeps libcoap's rules where they decide what reaches the gateway:
/// version 1, a token of at most 8 bytes, option deltas and lengths with
/// their 13/14 extensions (15 is reserved), a payload marker followed by
/// at least one byte, and the length bounds of the options the gateway reads
/// (a request breaking one gets 4.02 from libcoap, never the handler).
enum CoAPMessage {
    /// The fields `CoAPPDU.read` would take out of this message, or nil when
    /// libcoap would not hand it to the gateway's handler at all.
    static func requestFields(_ bytes: ArraySlice<UInt8>) -> CoAPRequestFields? {
        var reader = ByteReader(bytes)
        guard let first = reader.byte(), first >> 6 == 1, let code = reader.byte(),
              reader.bytes(2) != nil else { return nil }
        // Class 0 with a detail: a request (0.00 is an empty message).
        guard code >> 5 == 0, code != 0 else { return nil }
        let tokenLength = Int(first & 0x0F)
        guard tokenLength <= 8, reader.bytes(tokenLength) != nil else { return nil }

        var fields = CoAPRequestFields(methodCode: code)
        var number = 0
        while let head = reader.byte() {
            if head == 0xFF {
                guard !reader.isAtEnd else { return nil }
                fields.payload = Array(reader.rest())
                break
            }
            guard let delta = extended(Int(head >> 4), &reader),
                  let length = extended(Int(head & 0x0F), &reader),
                  let value = reader.bytes(length) else { return nil }
            number += delta
            guard number <= 0xFFFF else { return nil }
            guard take(number, Array(value), into: &fields) else { return nil }
        }
        return fields
    }

    /// An option's delta or length, with its extension bytes.
    private static func extended(_ nibble: Int, _ reader: inout ByteReader) -> Int? {
        switch nibble {
        case 13: return reader.byte().map { Int($0) + 13 }
        case 14: return reader.bytes(2).map { Int($0[$0.startIndex]) << 8 + Int($0[$0.startIndex + 1]) + 269 }
        case 15: return nil
        default: return nibble
        }
    }

    /// Stores one option as `CoAPPDU.read` does; false for a length libcoap refuses.
    private static func take(_ number: Int, _ value: [UInt8], into fields: inout CoAPRequestFields) -> Bool {
        switch number {
        case 11:  // Uri-Path
            guard value.count <= 255 else { return false }
            fields.path.append(value)
        case 12:  // Content-Format
            guard value.count <= 2 else { return false }
            fields.contentFormat = UInt32(truncatingIfNeeded: unsigned(value))
        case 27:  // Block1
            guard value.count <= 3 else { return false }
            fields.block1 = Block1Option(encoded: UInt32(truncatingIfNeeded: unsigned(value)))
        case 60:  // Size1
            guard value.count <= 4 else { return false }
            fields.size1 = Int(unsigned(value))
        case 6:  // Observe
            guard value.count <= 3 else { return false }
            fields.observe = UInt32(truncatingIfNeeded: unsigned(value))
        case 15:  // Uri-Query
            guard value.count <= 255 else { return false }
            fields.query.append(value)
        default:
            break
        }
        return true
    }

    /// libcoap's `coap_decode_var_bytes`: big-endian, kept to 32 bits.
    private static func unsigned(_ value: [UInt8]) -> UInt32 {
        value.reduce(0) { $0 << 8 | UInt32($1) }
    }
}
