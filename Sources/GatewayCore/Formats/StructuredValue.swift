/// A decoded JSON or CBOR document, in one model, so SenML and the
/// CBOR-to-JSON conversion work the same on both.
///
/// Maps keep their members in the order they came; keys may be any value
/// (CBOR allows it; SenML-CBOR uses integer labels).
public indirect enum StructuredValue: Sendable, Equatable {
    case null
    /// CBOR's `undefined`, and simple values JSON has no word for.
    case undefined
    case bool(Bool)
    case int(Int64)
    /// A non-negative integer above `Int64.max` (CBOR only).
    case uint(UInt64)
    case double(Double)
    case string(String)
    /// A CBOR byte string.
    case bytes([UInt8])
    case array([StructuredValue])
    case map([(key: StructuredValue, value: StructuredValue)])
    /// A CBOR tag and the item it wraps.
    case tagged(UInt64, StructuredValue)

    public static func == (lhs: StructuredValue, rhs: StructuredValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null), (.undefined, .undefined): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.uint(a), .uint(b)): return a == b
        case let (.double(a), .double(b)): return a == b || (a.isNaN && b.isNaN)
        case let (.string(a), .string(b)): return a == b
        case let (.bytes(a), .bytes(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.map(a), .map(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.tagged(t1, v1), .tagged(t2, v2)): return t1 == t2 && v1 == v2
        default: return false
        }
    }

    /// The number this is, if it is one (an integer or a float).
    public var number: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .uint(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// A map's value for a string key.
    public subscript(key: String) -> StructuredValue? {
        guard case .map(let members) = self else { return nil }
        return members.first { $0.key == .string(key) }?.value
    }
}

/// The most deeply nested document the decoders accept: real payloads nest a
/// few levels, and a bound keeps hostile ones from exhausting the stack.
public let structuredValueMaxDepth = 64
