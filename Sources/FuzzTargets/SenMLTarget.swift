import Foundation
import GatewayCore
import HTTPIngress

/// `senml`: CBOR and SenML decoding, as a routed request's body: the payload
/// shaper with libcbor's streaming decoder (CBORCodec), SenML resolution
/// (RFC 8428 base fields), JSON and NDJSON batches, each under the mapping
/// kind that reads it.
///
/// Input: one selector byte, then the body. Bits 0-2 pick the mapping
/// (`kinds`), bits 3-5 the declared media type (`mediaTypes`; the first is
/// none, so the shaper sniffs), bit 6 CoAP instead of HTTP.
package enum SenMLTarget {
    static let kinds = ["senml", "records", "json", "batch", "envelopes", "senml", "records", "json"]
    static let mediaTypes: [String?] = [
        nil, "application/senml+json", "application/senml+cbor", "application/cbor",
        "application/json", "application/x-ndjson", "application/senml+json; charset=utf-8", "text/plain",
    ]

    /// The number of messages the body became, or the status of its refusal
    /// as a negative number.
    @discardableResult
    package static func run(_ input: [UInt8]) -> Int {
        let fixture = FuzzFixture.shared
        guard let selector = input.first else { return 0 }
        let request = IngressRequest(
            ingress: selector & 0x40 != 0 ? .coap : .http, method: .post,
            path: ["formats", kinds[Int(selector & 7)], "meter-9"],
            contentType: mediaTypes[Int(selector >> 3 & 7)],
            payload: Array(input.dropFirst()), peer: "192.0.2.9:5683", receivedAt: FuzzFixture.now
        )
        guard case .success(let route) = fixture.router.route(request) else {
            preconditionFailure("the fixture's /formats mappings route every kind")
        }
        switch Shaping.messages(request, route, fixture) {
        case .success(let messages):
            return messages.count
        case .failure(let rejection):
            return -Int(HTTPAnswer(rejection: rejection).status)
        }
    }
}
