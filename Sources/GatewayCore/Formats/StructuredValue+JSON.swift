import Foundation

extension StructuredValue {
    /// Compact JSON text, converted as RFC 8949 §6.1 advises for CBOR: byte
    /// strings become base64url text (base64 or hex under tags 22 and 23),
    /// a map key that is not text becomes the text of its JSON form, and
    /// `undefined`, NaN and the infinities become null.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter()
        writer.value(self)
        return writer.bytes
    }

    /// Parses JSON text. Objects keep no particular member order.
    public static func parseJSON(_ bytes: [UInt8]) -> Result<StructuredValue, FormatError> {
        do {
            return .success(try JSONDecoder().decode(JSONNode.self, from: Data(bytes)).value)
        } catch let error as DecodingError {
            return .failure(FormatError(JSONNode.describe(error)))
        } catch {
            return .failure(FormatError("not valid JSON"))
        }
    }
}

/// Why a body could not be read in the format it claims.
public struct FormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension JSONWriter {
    mutating func value(_ value: StructuredValue, bytesAs encoding: ByteEncoding = .base64url) {
        switch value {
        case .null, .undefined: null()
        case .bool(let flag): raw(Array((flag ? "true" : "false").utf8))
        case .int(let number): raw(Array(String(number).utf8))
        case .uint(let number): raw(Array(String(number).utf8))
        case .double(let number): number.isFinite ? raw(Array(Self.text(of: number).utf8)) : null()
        case .string(let text): string(text)
        case .bytes(let data): string(encoding.encode(data))
        case .array(let items):
            beginArray()
            for item in items { element(); self.value(item) }
            endArray()
        case .map(let members):
            beginObject()
            for member in members {
                if case .string(let name) = member.key {
                    key(name)
                } else {
                    key(String(decoding: member.key.jsonBytes, as: UTF8.self))
                }
                self.value(member.value)
            }
            endObject()
        case .tagged(let tag, let inner):
            switch tag {
            case 22: self.value(inner, bytesAs: .base64)
            case 23: self.value(inner, bytesAs: .hex)
            default: self.value(inner, bytesAs: encoding)
            }
        }
    }

    /// A double as JSON: integral values without a fraction, others in the
    /// shortest form that reads back as the same double.
    static func text(of number: Double) -> String {
        if number == number.rounded(), abs(number) < 1e15 { return String(Int64(number)) }
        return "\(number)"
    }

    enum ByteEncoding {
        case base64url, base64, hex

        func encode(_ data: [UInt8]) -> String {
            switch self {
            case .base64: return Data(data).base64EncodedString()
            case .base64url:
                return Data(data).base64EncodedString()
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: "")
            case .hex: return data.map { String(format: "%02x", $0) }.joined()
            }
        }
    }
}

/// Decodable bridge from JSON text to `StructuredValue`: Foundation's
/// decoder does the parsing (strictly: a number never reads as a bool).
private struct JSONNode: Decodable {
    let value: StructuredValue

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: Decoder) throws {
        if var items = try? decoder.unkeyedContainer() {
            guard decoder.codingPath.count < structuredValueMaxDepth else { throw FormatError("nested deeper than \(structuredValueMaxDepth) levels") }
            var values: [StructuredValue] = []
            while !items.isAtEnd { values.append(try items.decode(JSONNode.self).value) }
            value = .array(values)
            return
        }
        if let object = try? decoder.container(keyedBy: Key.self) {
            guard decoder.codingPath.count < structuredValueMaxDepth else { throw FormatError("nested deeper than \(structuredValueMaxDepth) levels") }
            var members: [(key: StructuredValue, value: StructuredValue)] = []
            for key in object.allKeys {
                members.append((.string(key.stringValue), try object.decode(JSONNode.self, forKey: key).value))
            }
            value = .map(members)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { value = .null }
        else if let flag = try? single.decode(Bool.self) { value = .bool(flag) }
        else if let number = try? single.decode(Int64.self) { value = .int(number) }
        else if let number = try? single.decode(UInt64.self) { value = .uint(number) }
        else if let number = try? single.decode(Double.self) { value = .double(number) }
        else { value = .string(try single.decode(String.self)) }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context):
            if let underlying = context.underlyingError as? FormatError { return underlying.message }
            return "not valid JSON"
        default:
            return "not valid JSON"
        }
    }
}
