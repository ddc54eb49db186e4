/// Every status one operation can answer, with why, decided from the
/// mapping the way the gateway decides its answers (HTTPAnswer in
/// HTTPIngress, the router, Intake and the downlink in GatewayRuntime).
/// Statuses no request can reach for this mapping are left out, so each one
/// listed can be provoked (see the contract tests).
struct OperationStatuses {
    /// Status code (`"200"`) or `"default"`, to its answer.
    var answers: [String: Answer] = [:]

    init(rule: MappingRule, method: RequestMethod, generator: OpenAPIGenerator) {
        let kind = MappingKind(rule)
        let hasBody = method != .get
        let isDevice = rule.auth == .device
        let secure = generator.http.tls != nil
        let lockouts = generator.devices.failureLimit.failures > 0

        // Before routing: the request target and framing.
        add(.text("400", "The request is malformed: " + Self.badRequest(rule, kind, hasBody: hasBody)))
        // An empty value is routed (and refused with 400 or 403), so the only
        // way to this path with no mapping is a value spanning segments; where
        // another mapping (or a `{rest*}`) takes those too, 404 cannot happen.
        let noMapping = "No mapping for the path: a path value sent as several segments (an unencoded `/`) that no mapping takes."
        let unmatched = generator.valueCanMissEveryMapping(rule)
        if kind == .shadow && method == .get {
            add(.text("404", unmatched ? noMapping + " Or no such shadow (AWS 404)." : "No such shadow (AWS 404)."))
        } else if unmatched {
            add(.text("404", noMapping))
        }
        if hasBody {
            add(.text("413", kind == .shadow
                ? "The body is over \(generator.http.maxBody) bytes (`http.max_body`), or over 8 KB, AWS's limit for a shadow document (or AWS answered 413)."
                : "The body is over \(generator.http.maxBody) bytes (`http.max_body`; at once when Content-Length says so), or the payload, envelope included, is over what the broker accepts."))
        }

        // Who sent it.
        if isDevice {
            add(.text("401", generator.devicesCanAuthenticate
                ? "No credentials, or credentials that prove nothing (sent over plain HTTP, unknown token, wrong certificate)."
                : "No device can authenticate with this configuration (it needs `http.tls` and a `devices` registry): every request is refused.",
                headers: ["WWW-Authenticate"]))
        } else if secure, generator.devicesCanAuthenticate {
            add(.text("401", "Credentials were presented over HTTPS and prove nothing (an anonymous mapping needs none, but refuses false ones).", headers: ["WWW-Authenticate"]))
        }
        if generator.devicesCanAuthenticate {
            var why = ["the device is disabled"]
            if !rule.allow.isEmpty { why.append("it is not in `allow` (\(rule.allow.joined(separator: ", ")))") }
            if let identity = rule.identity { why.append("`{\(identity)}` is not its own id") }
            if isDevice || secure {
                add(.text("403", "An authenticated device that may not do this: " + why.joined(separator: ", or ") + "."))
            }
        }
        var tooMany: [String] = []
        if lockouts, isDevice || secure {
            tooMany.append("too many refused requests from this address or device (`devices.max_failures`): locked out for `devices.lockout`")
        }
        if kind == .shadow {
            tooMany.append("10 requests for this thing already wait for AWS (AWS allows 10 in flight per thing; Retry-After: 1), or AWS answered 429")
        }
        if !tooMany.isEmpty {
            add(.text("429", tooMany.joined(separator: "; ").capitalizedFirst + ".", headers: ["Retry-After"]))
        }

        switch kind {
        case .publish: addPublish(rule)
        case .shadow: addShadow(rule, method: method)
        case .commands: addCommands(rule)
        }
    }

    private mutating func addPublish(_ rule: MappingRule) {
        if !rule.accept.isEmpty {
            add(.text("415", "The request declared a Content-Type the mapping does not accept (\(rule.accept.joined(separator: ", "))); the diagnostic lists those it does."))
        }
        if rule.batch {
            add(.json("202", "Accepted: every element is committed to the outbox (QoS 1) or queued (QoS 0), together; the body counts them.", schema: "BatchAccepted"))
        } else if rule.ack == .delivered {
            add(.text("200", "The broker acknowledged the message (`ack: delivered`).", example: "delivered\n"))
            add(.text("504", "`ack: delivered` and `ack_timeout` (\(Descriptions.duration(rule.ackTimeout))) passed first; the message stays queued and will still be delivered" + (rule.qos == .atMostOnce ? " (or upstream is offline and QoS 0 messages are not kept)." : ".")))
        } else {
            add(.text("202", "Accepted: the message is committed to the outbox (QoS 1) or queued (QoS 0), and will be published.", example: "accepted\n"))
        }
        add(.text("503", "The outbox is full (`outbox.max_messages` / `max_bytes`) or its disk is, or the gateway is shutting down. Retry after Retry-After seconds.", headers: ["Retry-After"]))
        add(.text("500", "An internal failure, e.g. the outbox could not write the message; nothing is published."))
    }

    private mutating func addShadow(_ rule: MappingRule, method: RequestMethod) {
        guard let shadow = rule.shadow else { return }
        if method == .get {
            add(.json("200", "The shadow, as `shadow.answer: \(shadow.answer.rawValue)` cuts it down; with `?wait`, the next change (delta) instead.", schema: "ShadowDocument"))
            add(.empty("204", "`?wait=N` only: no change within N seconds."))
        } else {
            add(.json("200", "AWS accepted the update: " + (shadow.answer == .document ? "the document it accepted." : "`{\"version\":N}`, the shadow's new version."), schema: "ShadowDocument"))
            add(.text("409", "The body named a `version` that is no longer current: read the shadow again and retry."))
            if shadow.offline == .queue {
                add(.text("202", "Upstream is down and `shadow.offline: queue`: the update is kept in the outbox and sent after the reconnect; AWS's answer to it is not heard.", example: "accepted\n"))
            }
        }
        add(.text("502", "The broker or the shadow service refused the gateway's request (its IoT policy, AWS 401/403 or another error)."))
        add(.text("503", "Upstream is down" + (method == .get || shadow.offline == .refuse ? "" : " (for a read)") + ", every subscription of the gateway's connection is in use, AWS answered 503, or the gateway is shutting down.", headers: ["Retry-After"]))
        add(.text("504", "No answer from AWS within `shadow.timeout` (\(Descriptions.duration(shadow.timeout)))" + (method == .get ? "." : "; the update may still have been applied.")))
        add(.text("default", "Any other status is an internal failure (500, e.g. the outbox could not keep a queued update). It cannot be provoked from outside, so the contract tests do not reach it."))
    }

    private mutating func addCommands(_ rule: MappingRule) {
        guard let commands = rule.commands else { return }
        let content = commands.format == .raw
            ? "the MQTT payload exactly as published (`application/octet-stream`)"
            : "a JSON envelope with its topic, payload and arrival time"
        add(Answer(
            status: "200",
            description: "The oldest kept command, or one arriving within `?wait`: \(content); `Command-Topic` names its topic. It is taken: the next GET gets the next one.",
            headers: ["Command-Topic"],
            content: commands.format == .raw
                ? ["application/octet-stream": ["schema": ["type": "string", "contentMediaType": "application/octet-stream"] as OpenAPIObject] as OpenAPIObject]
                : ["application/json": ["schema": ["$ref": "#/components/schemas/CommandEnvelope"]] as OpenAPIObject]
        ))
        add(.empty("204", "No command kept (plain GET), or none arrived within `?wait=N`."))
        add(.text("502", "The broker refused the subscription to the device's command filter (its IoT policy): to a waiting long-poll."))
        add(.text("503", "Every subscription of the gateway's connection is in use, or the gateway is shutting down.", headers: ["Retry-After"]))
        add(.text("default", "Any other status is an internal failure (500, e.g. `commands.sqlite` cannot be written). It cannot be provoked from outside, so the contract tests do not reach it."))
    }

    private mutating func add(_ answer: Answer) {
        if let earlier = answers[answer.status], earlier.description != answer.description {
            answers[answer.status] = Answer(
                status: answer.status, description: earlier.description + " " + answer.description,
                headers: earlier.headers, content: earlier.content
            )
        } else {
            answers[answer.status] = answer
        }
    }

    private static func badRequest(_ rule: MappingRule, _ kind: MappingKind, hasBody: Bool) -> String {
        var why = ["a path value unsafe for a topic (see the parameters)", "a request target that is not UTF-8"]
        if hasBody { why.append("a Transfer-Encoding other than chunked, or an invalid Content-Length") }
        switch kind {
        case .publish:
            if let body = PublishBodies.badBody(rule) { why.append(body) }
        case .shadow:
            why.append("a thing or shadow name AWS would not accept")
            why.append(hasBody ? "a body that is not a JSON object, or AWS answered 400" : "`wait` not from 1 to 120, or AWS answered 400")
        case .commands:
            why.append("`wait` not from 1 to 120; a rendered filter over AWS's limits")
        }
        return why.joined(separator: "; ") + "."
    }
}

/// One documented answer.
struct Answer {
    var status: String
    var description: String
    /// Names of headers in `components.headers`, all sent with this answer.
    var headers: [String] = []
    /// Media type to media type object; nil: no body.
    var content: OpenAPIObject?

    /// An answer with the gateway's short text body (a diagnostic, or
    /// `accepted` / `delivered`).
    static func text(_ status: String, _ description: String, headers: [String] = [], example: String? = nil) -> Answer {
        var media: OpenAPIObject = ["schema": ["$ref": "#/components/schemas/Text"]]
        if let example { media["example"] = example }
        return Answer(status: status, description: description, headers: headers, content: ["text/plain": media])
    }

    static func json(_ status: String, _ description: String, schema: String) -> Answer {
        Answer(status: status, description: description, content: ["application/json": ["schema": ["$ref": "#/components/schemas/\(schema)"]] as OpenAPIObject])
    }

    static func empty(_ status: String, _ description: String) -> Answer {
        Answer(status: status, description: description)
    }

    var object: OpenAPIObject {
        var object: OpenAPIObject = ["description": description]
        if !headers.isEmpty {
            var map: OpenAPIObject = [:]
            for name in headers { map[name] = ["$ref": "#/components/headers/\(name)"] }
            object["headers"] = map
        }
        if let content { object["content"] = content }
        return object
    }
}

extension String {
    fileprivate var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
