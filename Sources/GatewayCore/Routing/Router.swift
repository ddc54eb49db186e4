/// MQTT's own bound on a topic name, in UTF-8 bytes.
public let mqttMaxTopicBytes = 65_535

/// The result of routing one request.
public struct Route: Sendable {
    public var rule: MappingRule
    public var topic: String
    /// Path variables in pattern order; a `{name*}` value joins its segments with `/`.
    public var variables: [(name: String, value: String)]
    /// Decides the upstream connection: the rendered `shard_key`, or the topic.
    public var shardKey: String
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

    /// The first mapping whose resource, protocol and method all match wins.
    /// When resource and protocol match but no method does, the answer is
    /// "method not allowed" with every method the matching mappings accept.
    public func route(_ request: IngressRequest) -> Result<Route, IngressRejection> {
        var allowed: Set<RequestMethod> = []
        for rule in rules where rule.protocols.contains(request.ingress) {
            guard let values = rule.resource.match(request.path) else { continue }
            guard rule.methods.contains(request.method) else {
                allowed.formUnion(rule.methods)
                continue
            }
            return build(rule, values)
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

    private func build(_ rule: MappingRule, _ matched: [(name: String, segments: ArraySlice<String>)]) -> Result<Route, IngressRejection> {
        var values: [String: String] = ["gateway": gatewayName]
        var variables: [(name: String, value: String)] = []
        let used = rule.topic.usedVariables
        for (name, segments) in matched {
            if used.contains(name) {
                for segment in segments {
                    if let problem = TopicValue.problem(in: segment) {
                        return .failure(.badRequest(reason: "value of {\(name)} cannot be used in a topic: it \(problem)"))
                    }
                }
            }
            let value = segments.joined(separator: "/")
            values[name] = value
            variables.append((name, value))
        }
        let topic = rule.topic.render(values)
        if let problem = limits.problem(withTopic: topic) {
            return .failure(.badRequest(reason: problem))
        }
        return .success(Route(rule: rule, topic: topic, variables: variables, shardKey: rule.shardKey?.render(values) ?? topic))
    }

    /// Keeps diagnostics short however long the client's path is.
    /// Control characters are replaced so a hostile path cannot garble a log
    /// line or a terminal.
    static func shorten(_ text: String) -> String {
        let clean = String(String.UnicodeScalarView(text.unicodeScalars.map { TopicValue.isControl($0) ? "?" : $0 }))
        return clean.count <= 96 ? clean : String(clean.prefix(93)) + "..."
    }
}
