import CCBOR
import GatewayCore

/// Decodes one CBOR item (RFC 8949) with libcbor's streaming decoder.
///
/// libcbor reads the bytes; `CBORTreeBuilder` assembles what it reports.
/// Its tree-building `cbor_load` is not used: it allocates what a header
/// claims before any element arrives, so five bytes could ask for gigabytes.
/// Here a declared length larger than the bytes left is refused first.
public struct CBORDecoder: CBORDecoding {
    public init() {}

    public func decode(_ bytes: [UInt8]) -> Result<StructuredValue, FormatError> {
        guard !bytes.isEmpty else { return .failure(FormatError("the CBOR body is empty")) }
        let builder = CBORTreeBuilder(total: bytes.count)
        var callbacks = Self.callbacks
        var offset = 0
        let context = Unmanaged.passUnretained(builder).toOpaque()
        let outcome: Result<StructuredValue, FormatError> = bytes.withUnsafeBufferPointer { buffer in
            while builder.result == nil {
                guard offset < buffer.count else { return .failure(FormatError("the CBOR item ends early")) }
                builder.offset = offset
                let result = cbor_stream_decode(buffer.baseAddress! + offset, buffer.count - offset, &callbacks, context)
                if let error = builder.error { return .failure(error) }
                switch result.status {
                case CBOR_DECODER_FINISHED:
                    offset += result.read
                case CBOR_DECODER_NEDATA:
                    return .failure(FormatError("the CBOR item ends early"))
                default:
                    return .failure(FormatError("malformed CBOR at byte \(offset)"))
                }
            }
            return .success(builder.result!)
        }
        withExtendedLifetime(builder) {}
        if case .success = outcome, offset != bytes.count {
            return .failure(FormatError("\(bytes.count - offset) bytes follow the CBOR item"))
        }
        return outcome
    }

    /// libcbor calls back with the builder as context; these closures
    /// capture nothing, as C function pointers must.
    private static let callbacks: cbor_callbacks = {
        var c = cbor_empty_callbacks
        c.uint8 = { context, value in CBORTreeBuilder.from(context).add(.int(Int64(value))) }
        c.uint16 = { context, value in CBORTreeBuilder.from(context).add(.int(Int64(value))) }
        c.uint32 = { context, value in CBORTreeBuilder.from(context).add(.int(Int64(value))) }
        c.uint64 = { context, value in
            CBORTreeBuilder.from(context).add(value <= UInt64(Int64.max) ? .int(Int64(value)) : .uint(value))
        }
        // A negative integer n is encoded as -1 - n.
        c.negint8 = { context, value in CBORTreeBuilder.from(context).add(.int(-1 - Int64(value))) }
        c.negint16 = { context, value in CBORTreeBuilder.from(context).add(.int(-1 - Int64(value))) }
        c.negint32 = { context, value in CBORTreeBuilder.from(context).add(.int(-1 - Int64(value))) }
        c.negint64 = { context, value in
            CBORTreeBuilder.from(context).add(value < UInt64(Int64.max) ? .int(-1 - Int64(value)) : .double(-1 - Double(value)))
        }
        c.byte_string = { context, data, length in
            CBORTreeBuilder.from(context).bytes(data.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? [])
        }
        c.byte_string_start = { context in CBORTreeBuilder.from(context).open(.chunkedBytes([])) }
        c.string = { context, data, length in
            CBORTreeBuilder.from(context).text(data.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? [])
        }
        c.string_start = { context in CBORTreeBuilder.from(context).open(.chunkedText([])) }
        c.array_start = { context, count in CBORTreeBuilder.from(context).openArray(count: count) }
        c.indef_array_start = { context in CBORTreeBuilder.from(context).open(.array([], remaining: nil)) }
        c.map_start = { context, count in CBORTreeBuilder.from(context).openMap(count: count) }
        c.indef_map_start = { context in CBORTreeBuilder.from(context).open(.map([], key: nil, remaining: nil)) }
        c.tag = { context, value in CBORTreeBuilder.from(context).open(.tag(value)) }
        c.float2 = { context, value in CBORTreeBuilder.from(context).add(.double(Double(value))) }
        c.float4 = { context, value in CBORTreeBuilder.from(context).add(.double(Double(value))) }
        c.float8 = { context, value in CBORTreeBuilder.from(context).add(.double(value)) }
        c.undefined = { context in CBORTreeBuilder.from(context).add(.undefined) }
        c.null = { context in CBORTreeBuilder.from(context).add(.null) }
        c.boolean = { context, value in CBORTreeBuilder.from(context).add(.bool(value)) }
        c.indef_break = { context in CBORTreeBuilder.from(context).closeIndefinite() }
        return c
    }()
}
