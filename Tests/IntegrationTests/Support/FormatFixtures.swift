import Foundation
import Testing

/// Bodies for the format tests: CBOR made at test time by Python's `cbor2`
/// (an encoder independent of the gateway's libcbor decoder), and SenML
/// records as the subscriber sees them.
enum FormatFixtures {
    /// `cbor2.dumps` of a Python literal (`ast.literal_eval`: dicts with
    /// integer keys, bytes, True/None), minus `dropLast` bytes at the end.
    static func cbor(_ literal: String, dropLast: Int = 0) async throws -> [UInt8] {
        let output = NSTemporaryDirectory() + "iotgw-cbor-\(UUID().uuidString).cbor"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let script = "import ast, sys, cbor2; open(sys.argv[1], 'wb').write(cbor2.dumps(ast.literal_eval(sys.argv[2])))"
        let result = try await ProcessRunner.run("/usr/bin/python3", ["-c", script, output, literal], timeout: .seconds(30))
        guard result.succeeded, let data = FileManager.default.contents(atPath: output), data.count > dropLast else {
            throw HarnessError("cbor2 could not encode \(literal)\n\(result.summary)")
        }
        return Array(data.dropLast(dropLast))
    }

    /// One resolved SenML record as the gateway publishes it (normalized
    /// JSON: full name, absolute time, no base fields).
    struct Record: Decodable, Equatable, CustomStringConvertible {
        var n: String
        var u: String?
        var t: Double
        var v: Double?
        var vs: String?
        var vb: Bool?
        var vd: String?
        var s: Double?

        init(_ n: String, u: String? = nil, t: Double, v: Double? = nil, vs: String? = nil, vb: Bool? = nil, vd: String? = nil, s: Double? = nil) {
            self.n = n
            self.u = u
            self.t = t
            self.v = v
            self.vs = vs
            self.vb = vb
            self.vd = vd
            self.s = s
        }

        var description: String {
            var parts = ["n=\(n)", "t=\(t)"]
            if let u { parts.append("u=\(u)") }
            if let v { parts.append("v=\(v)") }
            if let vs { parts.append("vs=\(vs)") }
            if let vb { parts.append("vb=\(vb)") }
            if let vd { parts.append("vd=\(vd)") }
            if let s { parts.append("s=\(s)") }
            return "{" + parts.joined(separator: " ") + "}"
        }

        /// Labels a resolved record may carry; base labels (`bn`, `bt`, …) never.
        static let labels: Set<String> = ["n", "u", "t", "v", "vs", "vb", "vd", "s", "ut", "bver"]

        /// One record object (`batch: true`), checked to hold no base field.
        static func one(_ payload: [UInt8]) throws -> Record {
            try checkLabels(try JSONSerialization.jsonObject(with: Data(payload)), payload)
            return try JSONDecoder().decode(Record.self, from: Data(payload))
        }

        /// A normalized pack (an array of records).
        static func pack(_ payload: [UInt8]) throws -> [Record] {
            let array = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [Any], "not a JSON array: \(String(decoding: payload, as: UTF8.self))")
            for item in array { try checkLabels(item, payload) }
            return try JSONDecoder().decode([Record].self, from: Data(payload))
        }

        private static func checkLabels(_ object: Any, _ payload: [UInt8]) throws {
            let record = try #require(object as? [String: Any], "a record is not a JSON object: \(String(decoding: payload, as: UTF8.self))")
            let extra = Set(record.keys).subtracting(labels)
            #expect(extra.isEmpty, "labels \(extra.sorted()) in a resolved record: \(String(decoding: payload, as: UTF8.self))")
            #expect(record["n"] is String && record["t"] != nil, "a resolved record lacks n or t: \(String(decoding: payload, as: UTF8.self))")
        }
    }

    /// The same absolute-time pack three ways: CBOR (integer labels, RFC 8428
    /// §6) from cbor2, and hand-written SenML JSON. Base name, time, unit,
    /// value and sum; a base name changed mid-pack; v, vs, vb, vd and s.
    static let absoluteCBOR = """
        [{-2: 'kit-1/', -3: 1700000000.5, -4: 'Cel', -5: 20.0, -6: 100.0, 0: 'temp', 2: 1.5},
         {0: 'temp', 2: 2.25, 6: 10},
         {0: 'label', 3: 'kitchen'},
         {0: 'door', 4: True},
         {0: 'blob', 8: b'\\x00\\x01\\xfe\\xff'},
         {0: 'energy', 1: 'kWh', 5: 12.5},
         {-2: 'other:', 0: 'x', 2: -3}]
        """
    static let absoluteJSON = """
        [{"bn":"kit-1/","bt":1700000000.5,"bu":"Cel","bv":20,"bs":100,"n":"temp","v":1.5},
         {"n":"temp","v":2.25,"t":10},
         {"n":"label","vs":"kitchen"},
         {"n":"door","vb":true},
         {"n":"blob","vd":"AAH-_w"},
         {"n":"energy","u":"kWh","s":12.5},
         {"bn":"other:","n":"x","v":-3}]
        """
    /// What both resolve to: base value added to v, base sum to s, base
    /// unit where no u, vd as base64url.
    static let absoluteRecords: [Record] = [
        Record("kit-1/temp", u: "Cel", t: 1_700_000_000.5, v: 21.5),
        Record("kit-1/temp", u: "Cel", t: 1_700_000_010.5, v: 22.25),
        Record("kit-1/label", u: "Cel", t: 1_700_000_000.5, vs: "kitchen"),
        Record("kit-1/door", u: "Cel", t: 1_700_000_000.5, vb: true),
        Record("kit-1/blob", u: "Cel", t: 1_700_000_000.5, vd: "AAH-_w"),
        Record("kit-1/energy", u: "kWh", t: 1_700_000_000.5, s: 112.5),
        Record("other:x", u: "Cel", t: 1_700_000_000.5, v: 17),
    ]

    /// Relative times (below 2**28): offsets from when the gateway received
    /// the pack. JSON by hand, CBOR from cbor2.
    static let relativeJSON = #"[{"bn":"rel.","bt":-10,"n":"a","v":1},{"n":"b","v":2,"t":5},{"n":"c","vs":"now","t":10}]"#
    static let relativeCBOR = "[{-2: 'rel.', -3: -30, 0: 'a', 2: 1}, {0: 'b', 4: False, 6: 30}]"
    /// Name, offset from the receive time, and the record with t = 0.
    static let relativeJSONRecords: [(offset: Double, record: Record)] = [
        (-10, Record("rel.a", t: 0, v: 1)), (-5, Record("rel.b", t: 0, v: 2)), (0, Record("rel.c", t: 0, vs: "now")),
    ]
    static let relativeCBORRecords: [(offset: Double, record: Record)] = [
        (-30, Record("rel.a", t: 0, v: 1)), (0, Record("rel.b", t: 0, vb: false)),
    ]

    /// Checks records with relative times: each time lies in the window the
    /// request was in flight (plus its offset), everything else exact.
    static func expectRelative(
        _ records: [Record], _ expected: [(offset: Double, record: Record)], sentAfter: Date, answeredBefore: Date,
        _ what: String
    ) {
        #expect(records.count == expected.count, "\(what): \(records)")
        for (got, want) in zip(records, expected) {
            var withoutTime = got
            withoutTime.t = 0
            #expect(withoutTime == want.record, "\(what): \(got), want \(want.record)")
            // Wall clock on both sides; a little slack for the clock's resolution.
            let earliest = sentAfter.timeIntervalSince1970 + want.offset - 0.01
            let latest = answeredBefore.timeIntervalSince1970 + want.offset + 0.01
            #expect(got.t >= earliest && got.t <= latest,
                    "\(what): \(got.n) t=\(got.t) is not receive time \(want.offset >= 0 ? "+" : "")\(want.offset) s (\(earliest)...\(latest))")
        }
    }
}
