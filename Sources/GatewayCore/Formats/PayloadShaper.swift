import Foundation

/// One message a request becomes: its payload, and for a SenML record
/// published on its own, the record's name (for `{name}` in the topic).
public struct ShapedMessage: Sendable, Equatable {
    public var payload: [UInt8]
    public var recordName: String?

    public init(payload: [UInt8], recordName: String? = nil) {
        self.payload = payload
        self.recordName = recordName
    }
}

/// Turns a routed request's body into the messages its mapping publishes:
/// checks the declared media type against `accept`, reads JSON, CBOR,
/// NDJSON and SenML, splits batches. All or nothing: one bad element
/// refuses the request, naming the element.
public struct PayloadShaper: Sendable {
    let cbor: any CBORDecoding
    let gateway: String

    public init(cbor: any CBORDecoding, gateway: String) {
        self.cbor = cbor
        self.gateway = gateway
    }

    /// How a body is written, from its declared media type or, when none
    /// was declared, from what it parses as.
    enum Syntax: Equatable {
        case json, cbor, ndjson, opaque
    }

    public func shape(_ request: IngressRequest, route: Route) throws(IngressRejection) -> [ShapedMessage] {
        let rule = route.rule
        let declared = request.contentType.map(ContentFormats.base(of:))
        if let declared, !rule.accept.isEmpty, !rule.accept.contains(declared) {
            throw .unsupportedMediaType(
                accepted: rule.accept,
                reason: "\(Router.shorten(declared)) is not accepted here; send \(rule.accept.joined(separator: " or "))"
            )
        }
        if rule.payload == .raw, !rule.batch { return [ShapedMessage(payload: request.payload)] }
        if rule.payload == .envelope, !rule.batch { return [ShapedMessage(payload: envelope(request, route: route, body: request.payload))] }
        guard !request.payload.isEmpty else { throw .badRequest(reason: "the body is empty") }
        let syntax = declared.map(Self.syntax(of:)) ?? sniff(request.payload, batch: rule.batch)

        switch rule.payload {
        case .senml:
            let records = try senml(request, syntax: syntax)
            if rule.batch {
                return records.map { ShapedMessage(payload: $0.jsonBytes, recordName: $0.name) }
            }
            return [ShapedMessage(payload: SenML.packJSON(records))]
        case .json where !rule.batch:
            switch syntax {
            case .json:
                guard Self.isJSON(request.payload) else { throw .badRequest(reason: "the body is not valid JSON") }
                return [ShapedMessage(payload: request.payload)]
            case .cbor:
                let what = declared == nil ? "body: it declares no media type and is neither JSON nor CBOR" : "CBOR"
                return [ShapedMessage(payload: try decodeCBOR(request.payload, what: what).jsonBytes)]
            case .ndjson, .opaque:
                throw unreadable(declared, rule: rule)
            }
        default:
            let elements = try batchElements(request.payload, syntax: syntax, declared: declared, rule: rule)
            guard !elements.isEmpty else { throw .badRequest(reason: "the batch is empty") }
            if rule.payload == .envelope {
                return elements.map { ShapedMessage(payload: envelope(request, route: route, body: $0)) }
            }
            return elements.map { ShapedMessage(payload: $0) }
        }
    }

    /// A batch's elements as JSON text: NDJSON lines, a JSON array's
    /// elements as written, or a CBOR array's converted to JSON.
    private func batchElements(_ body: [UInt8], syntax: Syntax, declared: String?, rule: MappingRule) throws(IngressRejection) -> [[UInt8]] {
        switch syntax {
        case .ndjson:
            var elements: [[UInt8]] = []
            for (index, line) in BatchSplitting.lines(body).enumerated() {
                guard Self.isJSON(line.bytes) else {
                    throw .badRequest(reason: "element \(index) (line \(line.line)) is not valid JSON; nothing was accepted")
                }
                elements.append(Array(line.bytes))
            }
            return elements
        case .json:
            guard Self.isJSON(body) else { throw .badRequest(reason: "the body is not valid JSON") }
            switch BatchSplitting.arrayElements(body) {
            case .success(let slices): return slices.map { Array($0) }
            case .failure(let error): throw .badRequest(reason: error.message)
            }
        case .cbor where rule.payload == .json:
            guard case .array(let items) = try decodeCBOR(body) else {
                throw .badRequest(reason: "a batch must be a CBOR array")
            }
            return items.map(\.jsonBytes)
        case .cbor, .opaque:
            throw unreadable(declared, rule: rule)
        }
    }

    private func senml(_ request: IngressRequest, syntax: Syntax) throws(IngressRejection) -> [SenML.Record] {
        let pack: StructuredValue
        switch syntax {
        case .json:
            // As strict as every other JSON body; parseJSON checks the rest
            // (parsing it a second time on the ingress thread would be waste).
            guard !StrictJSON.breaksRFC(request.payload) else { throw .badRequest(reason: "invalid SenML JSON: not valid JSON") }
            switch StructuredValue.parseJSON(request.payload) {
            case .success(let value): pack = value
            case .failure(let error): throw .badRequest(reason: "invalid SenML JSON: \(error.message)")
            }
        case .cbor:
            pack = try decodeCBOR(request.payload, what: request.contentType == nil ? "SenML: neither JSON nor CBOR" : "SenML CBOR")
        case .ndjson, .opaque:
            throw .unsupportedMediaType(accepted: request.contentType.map { [$0] } ?? [], reason: "send SenML as application/senml+json or application/senml+cbor")
        }
        switch SenML.resolve(pack, now: request.receivedAt) {
        case .success(let records): return records
        case .failure(let error): throw .badRequest(reason: "invalid SenML: \(error.message); nothing was accepted")
        }
    }

    private func decodeCBOR(_ body: [UInt8], what: String = "CBOR") throws(IngressRejection) -> StructuredValue {
        switch cbor.decode(body) {
        case .success(let value): return value
        case .failure(let error): throw .badRequest(reason: "invalid \(what): \(error.message)")
        }
    }

    private func envelope(_ request: IngressRequest, route: Route, body: [UInt8]) -> [UInt8] {
        var element = request
        element.payload = body
        if route.rule.batch { element.contentType = "application/json" }
        return Envelope.encode(request: element, route: route, gateway: gateway)
    }

    private func unreadable(_ declared: String?, rule: MappingRule) -> IngressRejection {
        let accepted = rule.accept
        return .unsupportedMediaType(
            accepted: accepted,
            reason: "\(declared.map(Router.shorten) ?? "this body") cannot be read here; send \(accepted.joined(separator: " or "))"
        )
    }

    static func syntax(of base: String) -> Syntax {
        if base == MediaTypes.ndjson || base == "application/jsonl" { return .ndjson }
        if base == "application/json" || base.hasSuffix("+json") { return .json }
        if base == "application/cbor" || base.hasSuffix("+cbor") { return .cbor }
        return .opaque
    }

    /// No media type declared: JSON if it parses as JSON, NDJSON for a
    /// batch whose lines do, else CBOR.
    private func sniff(_ body: [UInt8], batch: Bool) -> Syntax {
        if Self.isJSON(body) { return .json }
        if batch, body.contains(UInt8(ascii: "\n")), let first = body.first(where: { !BatchSplitting.isSpace($0) }),
           first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            return .ndjson
        }
        return .cbor
    }

    static func isJSON<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        StrictJSON.isValid(bytes)
    }
}
