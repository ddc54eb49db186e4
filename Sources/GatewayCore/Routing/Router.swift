/// MQTT's own bound on a topic name, in UTF-8 bytes.
public let mqttMaxTopicBytes = 65_535

/// Template variables the gateway fills in itself; no path variable may take their names.
public enum MappingVariables {
    public static let gateway = "gateway"
    /// The authenticated device's id (`auth: device` mappings only).
    public static let deviceID = "device_id"
    /// A SenML record's resolved name (`payload: senml` with `batch: true`).
    public static let recordName = "name"
    public static let reserved: Set<String> = [gateway, deviceID]
}

/// The result of routing one request.
public struct Route: Sendable {
    public var rule: MappingRule
    public var topic: String
    /// Path variables in pattern order; a `{name*}` value joins its segments with `/`.
    public var variables: [(name: String, value: String)]
    /// Decides the upstream connection: the rendered `shard_key`, or the topic.
    public var shardKey: String
    /// The authenticated device, nil for an anonymous request.
    public var deviceID: String? = nil
    /// What the topic template is filled with, kept for a topic per record.
    var templateValues: [String: String] = [:]
    var limits: UpstreamLimits = .generic

    /// Whether each SenML record gets its own topic (`{name}` in it).
    public var topicPerRecord: Bool { rule.topic.usedVariables.contains(MappingVariables.recordName) }

    /// The topic of one SenML record, or why its name cannot be in one.
    public func topic(forRecord name: String) -> Result<String, IngressRejection> {
        // SenML names may hold '/', which makes topic levels: none empty.
        if name.hasSuffix("/") || name.contains("//") {
            return .failure(.badRequest(reason: "record name '\(Router.shorten(name))' would make an empty topic level"))
        }
        var values = templateValues
        values[MappingVariables.recordName] = name
        let topic = rule.topic.render(values)
        if let problem = limits.problem(withTopic: topic) { return .failure(.badRequest(reason: problem)) }
        return .success(topic)
    }
}

/// The mapping a request's path, protocol and method select, before anyone
/// is authorized.
public struct RouteMatch: Sendable {
    public var rule: MappingRule
    /// Each variable's segments (more than one for `{name*}`).
    public var values: [(name: String, segments: ArraySlice<String>)]

    /// The value of one path variable, segments joined by `/`.
    public func value(of name: String) -> String? {
        values.first { $0.name == name }.map { $0.segments.count == 1 ? $0.segments[$0.segments.startIndex] : $0.segments.joined(separator: "/") }
    }
}

/// The compiled mapping table: a pure function from request to route.
public struct Router: Sendable {
    public let rules: [MappingRule]
    public let gatewayName: String
    public let limits: UpstreamLimits

    public init(rules: [MappingRule], gatewayName: String, limits: UpstreamLimits = .generic) {
        self.rules = rules
        self.gatewayName = gatewayName
        self.limits = limits
    }

    /// All three steps at once: `match`, `authorize`, `build`.
    public func route(_ request: IngressRequest, authentication: Authentication = .anonymous) -> Result<Route, IngressRejection> {
        let found: RouteMatch
        switch match(request) {
        case .success(let value): found = value
        case .failure(let rejection): return .failure(rejection)
        }
        switch authorize(found, authentication: authentication, transport: request.transport) {
        case .success(let device): return build(found, device: device)
        case .failure(let rejection): return .failure(rejection)
        }
    }

    /// The first mapping whose resource, protocol and method all match wins.
    /// When resource and protocol match but no method does, the answer is
    /// "method not allowed" with every method the matching mappings accept.
    public func match(_ request: IngressRequest) -> Result<RouteMatch, IngressRejection> {
        var allowed: Set<RequestMethod> = []
        for rule in rules where rule.protocols.contains(request.ingress) {
            guard let values = rule.resource.match(request.path) else { continue }
            guard rule.methods.contains(request.method) else {
                allowed.formUnion(rule.methods)
                continue
            }
            return .success(RouteMatch(rule: rule, values: values))
        }
        let resource = Self.shorten(request.resource)
        if !allowed.isEmpty {
            let list = allowed.sorted()
            return .failure(.methodNotAllowed(
                allowed: list,
                reason: "method \(request.method.rawValue) not allowed for \(resource); allowed: \(list.map(\.rawValue).joined(separator: ", "))"
            ))
        }
        return .failure(.notFound(reason: "no mapping for \(resource)"))
    }

    /// Whether the request's sender may use the mapping it matched: the
    /// authenticated device (nil when anonymous and the mapping allows it),
    /// or 4.01 / 4.03.
    public func authorize(
        _ found: RouteMatch, authentication: Authentication, transport: Transport
    ) -> Result<Device?, IngressRejection> {
        let rule = found.rule
        switch authentication {
        case .failed(let reason):
            // Credentials that prove nothing are refused even where none are needed.
            return .failure(.unauthorized(reason: reason, invalidCredentials: true))
        case .anonymous:
            if rule.auth == .anonymous { return .success(nil) }
            let how = transport == .plain
                ? "send it over DTLS (coaps://) or HTTPS with the device's credentials"
                : "present the device's credentials"
            return .failure(.unauthorized(reason: "an authenticated device is required; \(how)", invalidCredentials: false))
        case .device(let device):
            if device.disabled {
                return .failure(.forbidden(reason: "device '\(device.id)' is disabled"))
            }
            if !rule.allow.isEmpty, !device.isAllowed(by: rule.allow) {
                return .failure(.forbidden(reason: "device '\(device.id)' may not use mapping '\(Self.shorten(rule.name))'"))
            }
            if let variable = rule.identity, let value = found.value(of: variable), value != device.id {
                return .failure(.forbidden(reason: "device '\(device.id)' may not send as '\(Self.shorten(value))'"))
            }
            return .success(device)
        }
    }

    /// Renders the topic and shard key; `device` fills `{device_id}`.
    public func build(_ found: RouteMatch, device: Device?) -> Result<Route, IngressRejection> {
        let rule = found.rule
        var values: [String: String] = Dictionary(minimumCapacity: found.values.count + 2)
        values["gateway"] = gatewayName
        if let device { values[MappingVariables.deviceID] = device.id }
        var variables: [(name: String, value: String)] = []
        let used = rule.topic.usedVariables
        for (name, segments) in found.values {
            if used.contains(name) {
                for segment in segments {
                    if let problem = TopicValue.problem(in: segment) {
                        return .failure(.badRequest(reason: "value of {\(name)} cannot be used in a topic: it \(problem)"))
                    }
                }
            }
            // Most variables are one segment; joining one still builds a new string.
            let value = segments.count == 1 ? segments[segments.startIndex] : segments.joined(separator: "/")
            values[name] = value
            variables.append((name, value))
        }
        let topic = rule.topic.render(values)
        // A topic per SenML record is checked once each record's name is in it.
        if !rule.topic.usedVariables.contains(MappingVariables.recordName), let problem = limits.problem(withTopic: topic) {
            return .failure(.badRequest(reason: problem))
        }
        if rule.shadow != nil {
            guard let address = ShadowAddress(updateTopic: topic) else {
                return .failure(.badRequest(reason: "the path does not name one thing's shadow"))
            }
            if let problem = ShadowAddress.problem(thing: address.thing) ?? address.name.flatMap(ShadowAddress.problem(shadowName:)) {
                return .failure(.badRequest(reason: problem))
            }
        }
        return .success(Route(
            rule: rule, topic: topic, variables: variables, shardKey: rule.shardKey?.render(values) ?? topic,
            deviceID: device?.id, templateValues: values, limits: limits
        ))
    }

    /// Keeps diagnostics short however long the client's path is.
    /// Control characters are replaced so a hostile path cannot garble a log
    /// line or a terminal.
    static func shorten(_ text: String) -> String {
        let clean = String(String.UnicodeScalarView(text.unicodeScalars.map { TopicValue.isControl($0) ? "?" : $0 }))
        return clean.count <= 96 ? clean : String(clean.prefix(93)) + "..."
    }
}
