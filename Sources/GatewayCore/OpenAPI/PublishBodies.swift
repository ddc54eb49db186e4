/// What a publishing mapping takes and what it publishes, from its
/// `payload`, `batch` and `accept` keys (see PayloadShaper).
enum PublishBodies {
    static func requestBody(_ rule: MappingRule) -> OpenAPIObject {
        var content: OpenAPIObject = [:]
        if rule.accept.isEmpty {
            content = Operations.anyBytes
        } else {
            for type in rule.accept { content[type] = ["schema": schema(type, rule: rule)] }
        }
        let types = rule.accept.isEmpty
            ? "Any bytes, with any Content-Type (or none); the types below are examples."
            : "Content-Type \(rule.accept.map { "`\($0)`" }.joined(separator: ", ")) (or none, then read by what it parses as); any other is 415."
        return ["required": !(rule.payload == .raw || rule.payload == .envelope) || rule.batch, "description": types + " " + published(rule), "content": content]
    }

    /// What reaches the topic.
    static func published(_ rule: MappingRule) -> String {
        var text: String
        switch rule.payload {
        case .raw: text = "Published exactly as sent"
        case .envelope: text = "Published inside a JSON envelope (`components.schemas.Envelope`): a JSON body as the JSON value itself, other UTF-8 text as a string, anything else as base64"
        case .json: text = "Published as JSON: a JSON body as sent, a CBOR body converted to JSON"
        case .senml: text = "Read as a SenML pack (RFC 8428, JSON or CBOR), its records resolved (base name, time, unit) and published as normalized SenML JSON"
        }
        if rule.batch {
            text += rule.payload == .senml
                ? ", one message per record"
                : ", one message per element of the JSON array (or CBOR array, or NDJSON line)"
            text += "; all are committed together or none (one bad element refuses the request with 400 naming it), and the answer is 202 with `{\"accepted\": count}`"
        }
        return text + "."
    }

    private static func schema(_ type: String, rule: MappingRule) -> OpenAPIObject {
        if type == MediaTypes.ndjson {
            return ["type": "string", "description": "One JSON value per line."]
        }
        if type.hasSuffix("cbor") {
            return ["type": "string", "contentMediaType": type]
        }
        if type == "application/senml+json" || (rule.payload == .senml && type == "application/json") {
            return ["$ref": "#/components/schemas/SenMLPack"]
        }
        if type == "application/json" || type.hasSuffix("+json") {
            return rule.batch ? ["type": "array", "minItems": 1] : [:]
        }
        return ["type": "string", "contentMediaType": type]
    }

    /// 400 reasons that come from reading the body.
    static func badBody(_ rule: MappingRule) -> String? {
        switch (rule.payload, rule.batch) {
        case (.raw, false), (.envelope, false): return nil
        case (.senml, _): return "an empty body, or one that is not a valid SenML pack; a record name that would make an unsafe topic"
        case (.json, false): return "an empty body, or one that is not valid JSON (or CBOR)"
        default: return "an empty body or batch, or one that is not a JSON array (or NDJSON, or CBOR array); an element that is not valid JSON"
        }
    }
}
