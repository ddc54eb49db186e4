import CCoAP
import GatewayCore

extension CoAPEngine {
    static let wellKnownCore: [[UInt8]] = [Array(".well-known".utf8), Array("core".utf8)]

    /// Registers `/.well-known/core` for GET, so the request reaches our
    /// handler rather than libcoap's built-in answer (which lists only
    /// resources registered with libcoap: none, as routing is ours).
    static func addDiscoveryResource(_ context: OpaquePointer, handler: coap_method_handler_t) -> Bool {
        let name = Array(".well-known/core".utf8)
        guard let uri = coap_new_str_const(name, name.count),
              let resource = coap_resource_init(uri, Int32(COAP_RESOURCE_FLAGS_RELEASE_URI)) else { return false }
        coap_register_request_handler(resource, COAP_REQUEST_GET, handler)
        coap_add_resource(context, resource)
        return true
    }

    /// The link-format document the sender may see, one block of it at a
    /// time when it is longer than a message holds (RFC 7959 Block2; the
    /// document is rebuilt for each block, its ETag shows a change between them).
    func discovery(_ fields: CoAPRequestFields, peer: String, secure: Bool, session: OpaquePointer) -> CoAPReply {
        var request = IngressRequest(ingress: .coap, method: .get, path: [".well-known", "core"], contentType: nil, payload: [], peer: peer)
        if secure {
            request.transport = .secure
            request.credential = secureCredential(session)
        }
        let filters = fields.query.compactMap { Discovery.Filter(query: String(decoding: $0, as: UTF8.self)) }
        let document = Array(pipeline.discover(request, filters: filters).utf8)
        let largest = Self.largestBlockExponent(maxPDU: coap_session_max_pdu_size(session))
        return Self.block(of: document, asked: fields.block2, largestExponent: largest)
    }

    /// Answers block `num` of `document` in the size asked (or the largest
    /// that fits a message); 4.02 for a block past the end.
    static func block(of document: [UInt8], asked: UInt32?, largestExponent: UInt32) -> CoAPReply {
        var exponent = largestExponent
        var number = 0
        if let asked {
            exponent = min(asked & 0x7, largestExponent)
            // A smaller block size than asked keeps the same offset (RFC 7959 §2.4).
            number = Int(asked >> 4) << Int((asked & 0x7) - exponent)
        }
        let size = 1 << (Int(exponent) + 4)
        var reply = CoAPReply(code: 205, outcome: .served)
        reply.contentFormat = 40
        reply.etag = etag(document)
        guard document.count > size || asked != nil else {
            reply.payload = document
            return reply
        }
        let start = number * size
        guard start < document.count || (start == 0 && document.isEmpty) else {
            return CoAPReply(code: 402, outcome: .badRequest, diagnostic: "block \(number) is past the end of the \(document.count)-byte document")
        }
        let end = min(document.count, start + size)
        let more: UInt32 = end < document.count ? 1 : 0
        reply.payload = Array(document[start..<end])
        reply.block2 = UInt32(number) << 4 | more << 3 | exponent
        if number == 0 { reply.size2 = UInt32(document.count) }
        return reply
    }

    /// Block sizes are 16 << exponent bytes, 1024 at most; a block leaves
    /// room for the header, token and options.
    static func largestBlockExponent(maxPDU: Int) -> UInt32 {
        var exponent: UInt32 = 6
        while exponent > 0, (16 << Int(exponent)) + 64 > maxPDU { exponent -= 1 }
        return exponent
    }

    /// FNV-1a of the document, 4 bytes: enough to tell versions apart.
    static func etag(_ document: [UInt8]) -> [UInt8] {
        var hash: UInt32 = 2_166_136_261
        for byte in document { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return withUnsafeBytes(of: hash.bigEndian, Array.init)
    }
}
