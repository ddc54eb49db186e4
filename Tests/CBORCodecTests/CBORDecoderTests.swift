import CBORCodec
import GatewayCore
import XCTest

/// The libcbor adapter against encodings made by Python's cbor2 (hex below),
/// and against hostile headers that must be refused without allocating.
final class CBORDecoderTests: XCTestCase {
    let decoder = CBORDecoder()

    func bytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    func testSenMLPackWithIntegerLabels() throws {
        // cbor2.dumps([{-2:'urn:dev:ow:10e2073a01080063:',-3:1.276020076e9,-4:'Cel',0:'temp',2:23.5},{0:'temp',6:10,2:23.6}])
        let value = try decoder.decode(bytes("82a521781c75726e3a6465763a6f773a313065323037336130313038303036333a22fb41d303a15b000000236343656c006474656d7002fb4037800000000000a3006474656d70060a02fb403799999999999a")).get()
        guard case .array(let records) = value, records.count == 2, case .map(let first) = records[0] else {
            return XCTFail("not an array of two maps: \(value)")
        }
        XCTAssertEqual(first[0].key, .int(-2))
        XCTAssertEqual(first[0].value, .string("urn:dev:ow:10e2073a01080063:"))
        XCTAssertEqual(first[1].value, .double(1.276020076e9))
        let resolved = try SenML.resolve(value, now: Date(timeIntervalSince1970: 2e9)).get()
        XCTAssertEqual(resolved.map(\.name), ["urn:dev:ow:10e2073a01080063:temp", "urn:dev:ow:10e2073a01080063:temp"])
        XCTAssertEqual(resolved.map(\.time), [1.276020076e9, 1.276020086e9])
        XCTAssertEqual(resolved[1].unit, "Cel")
        XCTAssertEqual(resolved[1].value, .number(23.6))
    }

    func testEveryKindOfItemConvertsToJSON() throws {
        // Below Int64.min an integer becomes a double (JSON has one number type).
        // cbor2.dumps({'a':[1,-1,2**64-1,-(2**63)-5,1.5,True,None,b'\x00\xff','x'],2:'two'})
        let value = try decoder.decode(bytes("a261618901201bffffffffffffffff3b8000000000000004fb3ff8000000000000f5f64200ff6178026374776f")).get()
        XCTAssertEqual(
            String(decoding: value.jsonBytes, as: UTF8.self),
            #"{"a":[1,-1,18446744073709551615,-9.223372036854776e+18,1.5,true,null,"AP8","x"],"2":"two"}"#
        )
        // Tag 22: bytes as base64 rather than base64url.
        XCTAssertEqual(String(decoding: try decoder.decode(bytes("d6426869")).get().jsonBytes, as: UTF8.self), #""aGk=""#)
    }

    func testIndefiniteItems() throws {
        // [_ "ab" "c"] as an indefinite text string inside an indefinite array, then {_ 1: 2}
        let value = try decoder.decode(bytes("9f7f62616261" + "63ffbf0102ffff")).get()
        XCTAssertEqual(value, .array([.string("abc"), .map([(.int(1), .int(2))])]))
    }

    func testHostileAndMalformedInputsAreRefused() {
        let cases: [(String, String)] = [
            ("9b00000000ffffffff", "claims"),         // an array of 2^32 elements in 9 bytes
            ("bb00000000ffffffff", "claims"),         // a map of 2^32 pairs
            ("83010203ff", "follow"),                 // trailing bytes
            ("830102", "ends early"),                 // truncated
            ("62c328", "UTF-8"),                      // invalid UTF-8 text
            ("ff", "break"),                          // a lone break
            ("", "empty"),
        ]
        for (hex, expected) in cases {
            switch decoder.decode(bytes(hex)) {
            case .success(let value): XCTFail("\(hex) decoded as \(value)")
            case .failure(let error): XCTAssertTrue(error.message.contains(expected), "\(hex): \(error.message)")
            }
        }
        // Nesting beyond the bound: 100 nested one-element arrays.
        let deep = [UInt8](repeating: 0x81, count: 100) + [0x01]
        XCTAssertThrowsError(try decoder.decode(deep).get())
    }
}
