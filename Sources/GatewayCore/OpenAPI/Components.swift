/// `components`: shared headers, schemas, security schemes, and the 405
/// answer no operation can list.
enum Components {
    static func all(clientCertificates: Bool) -> OpenAPIObject {
        var security: OpenAPIObject = [
            "bearerToken": [
                "type": "http", "scheme": "bearer",
                "description": "`Authorization: Bearer <token>`: the device's token (its SHA-256 is in the registry). HTTPS only; on plain HTTP it is ignored.",
            ],
            "basicToken": [
                "type": "http", "scheme": "basic",
                "description": "`Authorization: Basic` with `<device id>:<token>`. HTTPS only.",
            ],
        ]
        if clientCertificates {
            security["clientCertificate"] = [
                "type": "mutualTLS",
                "description": "A client certificate under `devices.ca_file` whose CN or a SAN is the device's `cert_name`, or whose fingerprint is pinned.",
            ]
        }
        return [
            "securitySchemes": security,
            "headers": headers,
            "schemas": schemas,
            "responses": [
                "MethodNotAllowed": [
                    "description": "The path has a mapping, but not for this method (any method the path item does not list, HEAD and OPTIONS included).",
                    "headers": ["Allow": ["$ref": "#/components/headers/Allow"]],
                    "content": ["text/plain": ["schema": ["$ref": "#/components/schemas/Text"]]],
                ] as OpenAPIObject,
            ] as OpenAPIObject,
        ]
    }

    private static var digits: OpenAPIObject { ["type": "string", "pattern": "^[0-9]+$"] }

    static var headers: OpenAPIObject { [
        "Retry-After": [
            "description": "Seconds to wait before retrying.",
            "required": true, "schema": digits,
        ] as OpenAPIObject,
        "WWW-Authenticate": [
            "description": "Two challenges, `Bearer realm=\"iot-gateway\"` (with `error=\"invalid_token\"` when credentials were presented) and `Basic realm=\"iot-gateway\", charset=\"UTF-8\"`.",
            "required": true, "schema": ["type": "string"],
        ] as OpenAPIObject,
        "Allow": [
            "description": "The methods the path takes, e.g. `POST, PUT`.",
            "required": true, "schema": ["type": "string"],
        ] as OpenAPIObject,
        "Command-Topic": [
            "description": "The MQTT topic the command was published on (control characters replaced by `?`).",
            "required": true, "schema": ["type": "string", "minLength": 1] as OpenAPIObject,
        ] as OpenAPIObject,
    ] }

    static var schemas: OpenAPIObject { [
        "Text": [
            "type": "string",
            "description": "`accepted`, `delivered`, or a one-line diagnostic saying why, ending in a newline.",
        ],
        "ShadowDocument": [
            "type": "object",
            "description": "What AWS answered, cut down as the mapping's `shadow.answer` says: the whole document (`state`, `metadata`, `version`, `timestamp`), its `state`, or `state.desired` (`{}` when none); an update under `state`/`desired` answers `{\"version\":N}`; a change is the delta (its `state` only, unless `document`).",
        ],
        "ShadowUpdate": [
            "type": "object",
            "description": "Reported state, or a document with only `state` (holding `reported` and/or `desired`, each an object or null) and optionally `version`.",
        ],
        "CommandEnvelope": [
            "type": "object",
            "required": ["topic", "received_at"],
            "properties": [
                "topic": ["type": "string", "description": "The topic the command was published on."],
                "received_at": ["type": "number", "description": "When the gateway received it, seconds since 1970."],
                "payload": ["type": "string", "description": "The payload, when it is UTF-8 (JSON stays text inside it)."],
                "payload_base64": ["type": "string", "description": "The payload's base64, when it is not UTF-8."],
            ] as OpenAPIObject,
        ] as OpenAPIObject,
        "BatchAccepted": [
            "type": "object",
            "required": ["accepted"],
            "properties": ["accepted": ["type": "integer", "minimum": 1, "description": "How many messages the batch became."] as OpenAPIObject],
        ] as OpenAPIObject,
        "SenMLPack": [
            "type": "array",
            "description": "RFC 8428 SenML records (`bn`, `bt`, `bu`, `n`, `u`, `v`, `vs`, `vb`, `vd`, `s`, `t`, ...).",
            "items": ["type": "object"],
        ] as OpenAPIObject,
        "Envelope": [
            "type": "object",
            "description": "What a `payload: envelope` mapping publishes (not an answer: it goes to MQTT).",
            "required": ["gateway", "protocol", "method", "device", "resource", "vars", "received_at", "content_type", "payload"],
            "properties": [
                "gateway": ["type": "string"],
                "protocol": ["enum": ["coap", "http"]],
                "method": ["type": "string"],
                "device": ["type": ["string", "null"], "description": "The authenticated device's id; null when anonymous."] as OpenAPIObject,
                "resource": ["type": "string"],
                "vars": ["type": "object", "additionalProperties": ["type": "string"]] as OpenAPIObject,
                "received_at": ["type": "string", "format": "date-time"],
                "content_type": ["type": ["string", "null"]],
                "payload": ["description": "The body: its JSON value, a string of its text, or its base64."],
                "payload_encoding": ["const": "base64"],
            ] as OpenAPIObject,
        ] as OpenAPIObject,
    ] }
}
