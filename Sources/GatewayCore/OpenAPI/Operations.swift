/// One operation of a path item: a method of a mapping.
enum Operations {
    /// The longest `?wait` the gateway takes (Intake.maxPollSeconds in
    /// GatewayRuntime, which this target cannot see).
    static let maxWaitSeconds = 120

    static func operation(_ rule: MappingRule, method: RequestMethod, statuses: OperationStatuses, generator: OpenAPIGenerator) -> OpenAPIObject {
        let kind = MappingKind(rule)
        var responses: OpenAPIObject = [:]
        for (status, answer) in statuses.answers { responses[status] = answer.object }
        var object: OpenAPIObject = [
            "operationId": "\(rule.name).\(method.rawValue.lowercased())",
            "tags": [kind.tag],
            "summary": summary(rule, kind: kind, method: method),
            "responses": responses,
            "security": security(rule, generator: generator),
        ]
        if method == .get, kind != .publish {
            object["parameters"] = [waitParameter(kind)]
        }
        if method != .get {
            object["requestBody"] = body(rule, kind: kind)
        }
        return object
    }

    private static func summary(_ rule: MappingRule, kind: MappingKind, method: RequestMethod) -> String {
        switch kind {
        case .publish: return "Publish to \(rule.topic.text)"
        case .shadow: return method == .get ? "Read the shadow, or wait for its next change" : "Update the shadow"
        case .commands: return "Take the next command, or wait for one"
        }
    }

    /// Device mappings take any of the device credentials; anonymous ones
    /// need none (false credentials are still refused, see 401).
    private static func security(_ rule: MappingRule, generator: OpenAPIGenerator) -> [OpenAPIObject] {
        guard rule.auth == .device else { return [[:]] }
        var schemes: [OpenAPIObject] = [["bearerToken": [String]()], ["basicToken": [String]()]]
        if generator.http.tls?.caFile != nil || generator.devices.caFile != nil {
            schemes.append(["clientCertificate": [String]()])
        }
        return schemes
    }

    private static func waitParameter(_ kind: MappingKind) -> OpenAPIObject {
        let what = kind == .shadow
            ? "the shadow's next change (delta); nothing is read first, so a change while no long-poll waits is not kept"
            : "the next command when none is kept"
        return [
            "name": "wait", "in": "query", "required": false,
            "description": "Long-poll: wait up to this many seconds for \(what): 200 with it, or 204 when none came. From 1 to \(maxWaitSeconds); anything else is 400.",
            "schema": ["type": "number", "minimum": 1, "maximum": maxWaitSeconds] as OpenAPIObject,
        ]
    }

    private static func body(_ rule: MappingRule, kind: MappingKind) -> OpenAPIObject {
        switch kind {
        case .shadow:
            return [
                "required": true,
                "description": "A JSON object of at most 8 KB: the device's reported state (`{\"on\":true}`, sent as `state.reported`), or a shadow document `{\"state\":{\"reported\":{…},\"desired\":{…}},\"version\":N}` passed on as it is; with `version`, a stale one is 409.",
                "content": ["application/json": ["schema": ["$ref": "#/components/schemas/ShadowUpdate"]] as OpenAPIObject] as OpenAPIObject,
            ]
        case .publish:
            return PublishBodies.requestBody(rule)
        case .commands:
            return [:]
        }
    }

    /// What a publishing mapping takes: anything. OpenAPI lists media
    /// types; these are the common ones.
    static var anyBytes: OpenAPIObject { [
        "application/octet-stream": ["schema": ["type": "string", "contentMediaType": "application/octet-stream"] as OpenAPIObject] as OpenAPIObject,
        "application/json": ["schema": [String: String]()] as OpenAPIObject,
        "text/plain": ["schema": ["type": "string"]] as OpenAPIObject,
    ] }
}
