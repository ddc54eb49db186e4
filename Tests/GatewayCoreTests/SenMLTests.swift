import Foundation
import Testing
@testable import GatewayCore

@Suite("SenML")
struct SenMLTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func resolve(_ json: String) -> Result<[SenML.Record], FormatError> {
        switch StructuredValue.parseJSON(Array(json.utf8)) {
        case .success(let pack): return SenML.resolve(pack, now: now)
        case .failure(let error): return .failure(error)
        }
    }

    @Test func baseValuesApplyUntilChanged() throws {
        // RFC 8428's multiple-measurements example, with a base value and sum added.
        let records = try resolve("""
            [{"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e9,"bu":"A","bver":5,"n":"voltage","u":"V","v":120.1},
             {"n":"current","t":-5,"v":1.2},
             {"n":"current","t":-4,"v":1.3},
             {"bn":"dev2:","bv":10,"bs":100,"n":"x","v":1,"s":5},
             {"n":"flag","vb":true},{"n":"label","vs":"on"},{"n":"blob","vd":"AP8"}]
            """).get()
        #expect(records.map(\.name) == [
            "urn:dev:ow:10e2073a0108006:voltage", "urn:dev:ow:10e2073a0108006:current", "urn:dev:ow:10e2073a0108006:current",
            "dev2:x", "dev2:flag", "dev2:label", "dev2:blob",
        ])
        #expect(records[0].unit == "V")
        #expect(records[1].unit == "A")
        #expect(records[1].time == 1.276020076001e9 - 5)
        #expect(records[0].version == 5)
        #expect(records[3].value == .number(11))
        #expect(records[3].sum == 105)
        #expect(records[4].value == .bool(true))
        #expect(records[5].value == .string("on"))
        #expect(records[6].value == .data([0x00, 0xFF]))
    }

    @Test func relativeTimesBecomeAbsolute() throws {
        let records = try resolve(#"[{"n":"a","v":1},{"n":"b","t":-60,"v":2},{"n":"c","bt":10,"t":5,"v":3}]"#).get()
        #expect(records.map(\.time) == [1_800_000_000, 1_800_000_000 - 60, 1_800_000_015])
    }

    @Test func normalizedJSONHasNoBaseFields() throws {
        let records = try resolve(#"[{"bn":"d:","bt":1700000000,"bu":"Cel","n":"t","v":21.5,"x-note":"kept"}]"#).get()
        #expect(String(decoding: SenML.packJSON(records), as: UTF8.self)
            == #"[{"n":"d:t","u":"Cel","t":1700000000,"v":21.5,"x-note":"kept"}]"#)
    }

    @Test(arguments: [
        (#"{"n":"a","v":1}"#, "array"),
        ("[]", "empty"),
        (#"[{"v":1}]"#, "no name"),
        (#"[{"n":"-bad","v":1}]"#, "must start"),
        (#"[{"n":"a b","v":1}]"#, "contains"),
        (#"[{"n":"a"}]"#, "needs a value"),
        (#"[{"n":"a","v":1,"vs":"x"}]"#, "at most one"),
        (#"[{"n":"a","v":"1"}]"#, "v must be a number"),
        (#"[{"n":"a","vb":1}]"#, "vb must be"),
        (#"[{"n":"a","v":1,"bver":11}]"#, "newer"),
        (#"[{"n":"a","v":1,"must_":1}]"#, "must be understood"),
        (#"[{"n":"a","v":1,"bq":1}]"#, "unknown base label"),
        (#"[{"n":"a","v":1},{"n":"b","vd":"!!"}]"#, "record 1"),
    ])
    func malformedPacksAreRefusedWhole(json: String, expected: String) {
        switch resolve(json) {
        case .success(let records): Issue.record("accepted \(records)")
        case .failure(let error): #expect(error.message.contains(expected), "\(error.message)")
        }
    }
}

@Suite("Batch splitting")
struct BatchSplittingTests {
    @Test func arrayElementsKeepTheirBytes() throws {
        let body = Array(#" [ {"a":"x,]}"} , [1,2], 3.50 ,"s\"]" ] "#.utf8)
        let elements = try BatchSplitting.arrayElements(body).get().map { String(decoding: $0, as: UTF8.self) }
        #expect(elements == [#"{"a":"x,]}"}"#, "[1,2]", "3.50", #""s\"]""#])
        #expect(try BatchSplitting.arrayElements(Array("[]".utf8)).get().isEmpty)
        #expect(throws: FormatError.self) { try BatchSplitting.arrayElements(Array(#"{"a":1}"#.utf8)).get() }
    }

    @Test func ndjsonLinesSkipBlankOnesAndKeepNumbers() {
        let lines = BatchSplitting.lines(Array("{\"a\":1}\r\n\n{\"a\":2}\n".utf8))
        #expect(lines.map(\.line) == [1, 3])
        #expect(lines.map { String(decoding: $0.bytes, as: UTF8.self) } == [#"{"a":1}"#, #"{"a":2}"#])
    }
}
