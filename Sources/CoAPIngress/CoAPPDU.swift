import CCoAP
import GatewayCore

/// What the gateway reads from a request PDU. `package`: the fuzz targets
/// build these from bytes of their own (see CoAPRequestAdmission).
package struct CoAPRequestFields {
    package var methodCode: UInt8
    package var path: [[UInt8]] = []
    package var contentFormat: UInt32?
    package var block1: Block1Option?
    package var size1: Int?
    package var payload: [UInt8] = []
    package var observe: UInt32?
    /// Block2 as asked: `num << 4 | m << 3 | szx` (RFC 7959 §2.2).
    package var block2: UInt32?
    /// Uri-Query options, each `name=value`.
    package var query: [[UInt8]] = []

    package init(methodCode: UInt8) {
        self.methodCode = methodCode
    }
}

/// Reading requests and writing replies; every libcoap call on a PDU lives here.
enum CoAPPDU {
    static func read(_ request: OpaquePointer) -> CoAPRequestFields {
        var fields = CoAPRequestFields(methodCode: UInt8(truncatingIfNeeded: coap_pdu_get_code(request).rawValue))
        var iterator = coap_opt_iterator_t()
        if coap_option_iterator_init(request, &iterator, nil) != nil {
            while let option = coap_option_next(&iterator) {
                let length = Int(coap_opt_length(option))
                let value = coap_opt_value(option)
                switch Int32(iterator.number) {
                case COAP_OPTION_URI_PATH:
                    fields.path.append(value.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? [])
                case COAP_OPTION_CONTENT_FORMAT:
                    fields.contentFormat = UInt32(coap_decode_var_bytes(value, length))
                case COAP_OPTION_BLOCK1:
                    fields.block1 = Block1Option(encoded: UInt32(coap_decode_var_bytes(value, length)))
                case COAP_OPTION_SIZE1:
                    fields.size1 = Int(coap_decode_var_bytes(value, length))
                case COAP_OPTION_OBSERVE:
                    fields.observe = UInt32(coap_decode_var_bytes(value, length))
                case COAP_OPTION_BLOCK2:
                    fields.block2 = UInt32(coap_decode_var_bytes(value, length))
                case COAP_OPTION_URI_QUERY:
                    fields.query.append(value.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? [])
                default:
                    break
                }
            }
        }
        var length = 0
        var data: UnsafePointer<UInt8>?
        if coap_get_data(request, &length, &data) != 0, let data, length > 0 {
            fields.payload = Array(UnsafeBufferPointer(start: data, count: length))
        }
        return fields
    }

    /// Makes libcoap send nothing for this request now: a response of type
    /// NON with no code is dropped (its `no_response` check), where an ACK
    /// with no code would go out as an empty ACK. The answer is sent later.
    static func suppress(_ response: OpaquePointer) {
        coap_pdu_set_type(response, COAP_MESSAGE_NON)
        coap_pdu_set_code(response, COAP_EMPTY_CODE)
    }

    /// Fills in a response PDU. Options go in ascending number order, before the payload.
    static func write(_ reply: CoAPReply, to response: OpaquePointer) {
        coap_pdu_set_code(response, iotgw_coap_response_code(reply.code))
        var buffer = [UInt8](repeating: 0, count: 4)
        func add(_ number: Int32, _ value: UInt32) {
            let length = coap_encode_var_safe(&buffer, buffer.count, value)
            _ = coap_add_option(response, coap_option_num_t(number), Int(length), buffer)
        }
        if let etag = reply.etag { _ = coap_add_option(response, coap_option_num_t(COAP_OPTION_ETAG), etag.count, etag) }
        if let observe = reply.observe { add(COAP_OPTION_OBSERVE, observe & 0xFF_FFFF) }
        if let format = reply.contentFormat { add(COAP_OPTION_CONTENT_FORMAT, format) }
        if let maxAge = reply.maxAge { add(COAP_OPTION_MAXAGE, maxAge) }
        if let block2 = reply.block2 { add(COAP_OPTION_BLOCK2, block2) }
        if let block1 = reply.block1 { add(COAP_OPTION_BLOCK1, block1.encoded) }
        if let size2 = reply.size2 { add(COAP_OPTION_SIZE2, size2) }
        if let size1 = reply.size1 { add(COAP_OPTION_SIZE1, size1) }
        if let payload = reply.payload, !payload.isEmpty {
            if coap_add_data(response, payload.count, payload) == 0 {
                // Larger than one message (Block2 answers are not built yet):
                // say so rather than send a truncated document.
                coap_pdu_set_code(response, iotgw_coap_response_code(500))
                let text = Array("the answer (\(payload.count) bytes) does not fit one CoAP message; read it over HTTP (or, for a shadow, ask for less: answer: state)".utf8)
                _ = coap_add_data(response, text.count, text)
            }
        } else if let diagnostic = reply.diagnostic, !diagnostic.isEmpty {
            let bytes = Array(diagnostic.utf8.prefix(200))
            _ = coap_add_data(response, bytes.count, bytes)
        }
    }

    static func method(code: UInt8) -> RequestMethod? {
        switch code {
        case 1: return .get
        case 2: return .post
        case 3: return .put
        case 4: return .delete
        case 5: return .fetch
        case 6: return .patch
        case 7: return .iPatch
        default: return nil
        }
    }
}
