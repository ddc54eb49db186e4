import Foundation

/// SenML (RFC 8428) packs, JSON (110) or CBOR (112) alike once decoded:
/// resolves base name, time, unit, value and sum into full records.
public enum SenML {
    /// One resolved record: no base fields, an absolute time.
    public struct Record: Sendable, Equatable {
        public var name: String
        /// Seconds since the Unix epoch.
        public var time: Double
        public var unit: String?
        public var value: Value?
        public var sum: Double?
        public var updateTime: Double?
        /// `bver` when the pack names a version other than the default 10.
        public var version: Int?
        /// Labels this gateway does not know, kept as they came (RFC 8428
        /// §4.4: unknown labels are ignored, not refused).
        public var extensions: [(name: String, value: StructuredValue)] = []

        public static func == (lhs: Record, rhs: Record) -> Bool {
            lhs.name == rhs.name && lhs.time == rhs.time && lhs.unit == rhs.unit && lhs.value == rhs.value
                && lhs.sum == rhs.sum && lhs.updateTime == rhs.updateTime && lhs.version == rhs.version
                && lhs.extensions.map(\.name) == rhs.extensions.map(\.name)
                && zip(lhs.extensions, rhs.extensions).allSatisfy { $0.value == $1.value }
        }
    }

    public enum Value: Sendable, Equatable {
        case number(Double)
        case string(String)
        case bool(Bool)
        case data([UInt8])
    }

    /// Times below 2**28 are relative to now (RFC 8428 §4.5.3).
    static let relativeTimeBound = 268_435_456.0
    /// The SenML version this gateway implements.
    static let version = 10

    /// CBOR labels (RFC 8428 §6) and their JSON names.
    static let cborLabels: [Int64: String] = [
        -1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs",
        0: "n", 1: "u", 2: "v", 3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd",
    ]
    static let known: Set<String> = Set(cborLabels.values)

    /// Resolves a decoded pack; `now` makes relative times absolute. The
    /// whole pack is refused at its first bad record.
    public static func resolve(_ pack: StructuredValue, now: Date) -> Result<[Record], FormatError> {
        guard case .array(let items) = pack else {
            return .failure(FormatError("a SenML pack must be an array of records"))
        }
        guard !items.isEmpty else { return .failure(FormatError("the SenML pack is empty")) }
        var base = Base()
        var records: [Record] = []
        records.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            switch resolve(item, base: &base, now: now.timeIntervalSince1970) {
            case .success(let record): records.append(record)
            case .failure(let error): return .failure(FormatError("record \(index): \(error.message)"))
            }
        }
        return .success(records)
    }

    /// Base values in force: each applies until a later record changes it.
    struct Base {
        var name = ""
        var time = 0.0
        var unit: String?
        var value: Double?
        var sum: Double?
        var version: Int?
    }

    static func resolve(_ item: StructuredValue, base: inout Base, now: Double) -> Result<Record, FormatError> {
        guard case .map(let members) = item else { return .failure(FormatError("not a map of labels")) }
        var fields: [String: StructuredValue] = [:]
        var extensions: [(name: String, value: StructuredValue)] = []
        for member in members {
            let label: String
            switch member.key {
            case .string(let text): label = text
            case .int(let number):
                guard let name = cborLabels[number] else {
                    if number < 0 { return .failure(FormatError("unknown base label \(number)")) }
                    continue
                }
                label = name
            default:
                return .failure(FormatError("a label must be text or an integer"))
            }
            if known.contains(label) {
                guard fields[label] == nil else { return .failure(FormatError("label '\(label)' appears twice")) }
                fields[label] = member.value
            } else if label.hasSuffix("_") {
                // RFC 8428 §12.2: labels ending in '_' must be understood.
                return .failure(FormatError("label '\(label)' must be understood and is not"))
            } else if label.hasPrefix("b") {
                return .failure(FormatError("unknown base label '\(label)'"))
            } else {
                extensions.append((label, member.value))
            }
        }
        do {
            if let bver = try integer(fields["bver"], "bver") {
                guard bver >= 1 else { throw FormatError("bver must be a positive integer") }
                guard bver <= version else { throw FormatError("SenML version \(bver) is newer than this gateway reads (\(version))") }
                base.version = bver
            }
            if let bn = try text(fields["bn"], "bn") { base.name = bn }
            if let bt = try number(fields["bt"], "bt") { base.time = bt }
            if let bu = try text(fields["bu"], "bu") { base.unit = bu }
            if let bv = try number(fields["bv"], "bv") { base.value = bv }
            if let bs = try number(fields["bs"], "bs") { base.sum = bs }

            let name = base.name + (try text(fields["n"], "n") ?? "")
            if let problem = nameProblem(name) { throw FormatError(problem) }
            var time = base.time + (try number(fields["t"], "t") ?? 0)
            if time < relativeTimeBound { time += now }

            var values: [Value] = []
            if let v = try number(fields["v"], "v") { values.append(.number(v + (base.value ?? 0))) }
            if let vs = try text(fields["vs"], "vs") { values.append(.string(vs)) }
            if let vb = fields["vb"] {
                guard case .bool(let flag) = vb else { throw FormatError("vb must be true or false") }
                values.append(.bool(flag))
            }
            if let vd = fields["vd"] { values.append(.data(try data(vd))) }
            guard values.count <= 1 else { throw FormatError("a record has at most one of v, vs, vb and vd") }
            var sum = try number(fields["s"], "s")
            if let value = sum, let baseSum = base.sum { sum = value + baseSum }
            guard !values.isEmpty || sum != nil else { throw FormatError("a record needs a value (v, vs, vb or vd) or a sum (s)") }
            if let value = values.first, case .number(let number) = value, !number.isFinite {
                throw FormatError("v is not a finite number")
            }

            var record = Record(name: name, time: time, unit: try text(fields["u"], "u") ?? base.unit, value: values.first, sum: sum)
            record.updateTime = try number(fields["ut"], "ut")
            if let version = base.version, version != Self.version { record.version = version }
            record.extensions = extensions
            return .success(record)
        } catch let error as FormatError {
            return .failure(error)
        } catch {
            return .failure(FormatError("\(error)"))
        }
    }

    /// RFC 8428 §4.5.1: letters, digits and `-:./_`, starting with a letter or digit.
    static func nameProblem(_ name: String) -> String? {
        guard let first = name.unicodeScalars.first else { return "the record has no name (n or bn)" }
        func isAlnum(_ scalar: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
        }
        guard isAlnum(first) else { return "name '\(shorten(name))' must start with a letter or digit" }
        if let bad = name.unicodeScalars.first(where: { !isAlnum($0) && !"-:./_".unicodeScalars.contains($0) }) {
            return "name '\(shorten(name))' contains '\(bad.escaped(asASCII: true))'; names use letters, digits and -:./_"
        }
        return nil
    }

    static func shorten(_ text: String) -> String { text.count <= 64 ? text : String(text.prefix(61)) + "..." }

    static func number(_ value: StructuredValue?, _ label: String) throws(FormatError) -> Double? {
        guard let value else { return nil }
        guard let number = value.number, number.isFinite else { throw FormatError("\(label) must be a number") }
        return number
    }

    static func integer(_ value: StructuredValue?, _ label: String) throws(FormatError) -> Int? {
        guard let value else { return nil }
        switch value {
        case .int(let number) where number >= Int64(Int.min) && number <= Int64(Int.max): return Int(number)
        case .double(let number) where number == number.rounded() && abs(number) < 1e9: return Int(number)
        default: throw FormatError("\(label) must be an integer")
        }
    }

    static func text(_ value: StructuredValue?, _ label: String) throws(FormatError) -> String? {
        guard let value else { return nil }
        guard case .string(let text) = value else { throw FormatError("\(label) must be text") }
        return text
    }

    /// `vd`: a byte string in CBOR, base64url text in JSON (RFC 8428 §5).
    static func data(_ value: StructuredValue) throws(FormatError) -> [UInt8] {
        switch value {
        case .bytes(let bytes): return bytes
        case .string(let text):
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while base64.count % 4 != 0 { base64 += "=" }
            guard let data = Data(base64Encoded: base64) else { throw FormatError("vd must be base64url text") }
            return Array(data)
        default:
            throw FormatError("vd must be data (base64url text in JSON)")
        }
    }
}

extension SenML.Record {
    /// The record as normalized SenML JSON: `n`, `u`, `t`, the value, `s`,
    /// `ut`, `bver`, then extensions.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }

    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("n"); writer.string(name)
        if let unit { writer.key("u"); writer.string(unit) }
        writer.key("t"); writer.value(.double(time))
        switch value {
        case .number(let number)?: writer.key("v"); writer.value(.double(number))
        case .string(let text)?: writer.key("vs"); writer.string(text)
        case .bool(let flag)?: writer.key("vb"); writer.value(.bool(flag))
        case .data(let bytes)?: writer.key("vd"); writer.value(.bytes(bytes))
        case nil: break
        }
        if let sum { writer.key("s"); writer.value(.double(sum)) }
        if let updateTime { writer.key("ut"); writer.value(.double(updateTime)) }
        if let version { writer.key("bver"); writer.value(.int(Int64(version))) }
        for (name, value) in extensions { writer.key(name); writer.value(value) }
        writer.endObject()
    }
}

extension SenML {
    /// A resolved pack as one normalized SenML JSON array.
    public static func packJSON(_ records: [Record]) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginArray()
        for record in records {
            writer.element()
            record.write(to: &writer)
        }
        writer.endArray()
        return writer.bytes
    }
}
