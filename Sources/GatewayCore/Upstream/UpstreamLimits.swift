/// What the upstream broker accepts, per its profile: checked once per
/// mapping when the configuration loads, and per message at run time for
/// what depends on the message.
public struct UpstreamLimits: Sendable, Equatable {
    public var profile: UpstreamProfile
    public var maxQoS: QoS
    /// Topic length in UTF-8 bytes.
    public var maxTopicBytes: Int
    /// `/` separators in a topic, not counting a Basic Ingest prefix; nil: no limit.
    public var maxTopicSlashes: Int?
    /// Payload bytes as published (after the envelope); nil: MQTT's own limit.
    public var maxPayloadBytes: Int?

    public static let generic = UpstreamLimits(
        profile: .generic, maxQoS: .exactlyOnce, maxTopicBytes: mqttMaxTopicBytes,
        maxTopicSlashes: nil, maxPayloadBytes: nil
    )

    /// AWS IoT Core's per-message limits (its "AWS IoT Core message broker
    /// and protocol limits and quotas"): QoS 0 and 1 only, topics up to 256
    /// bytes and 7 slashes, payloads up to 128 KiB.
    public static let awsIotCore = UpstreamLimits(
        profile: .awsIotCore, maxQoS: .atLeastOnce, maxTopicBytes: 256,
        maxTopicSlashes: 7, maxPayloadBytes: 128 * 1024
    )

    public static func forProfile(_ profile: UpstreamProfile) -> UpstreamLimits {
        profile == .awsIotCore ? .awsIotCore : .generic
    }

    /// Why a finished topic cannot be published, or nil.
    public func problem(withTopic topic: String) -> String? {
        let bytes = topic.utf8.count
        if bytes > maxTopicBytes {
            return "topic would be \(bytes) bytes; the limit is \(maxTopicBytes)"
        }
        guard profile == .awsIotCore else { return nil }
        let reserved = AWSReservedTopic.classify(topic)
        if case .invalid(let reason) = reserved { return reason }
        if let maxTopicSlashes {
            let counted = reserved == .basicIngest ? AWSReservedTopic.stripBasicIngestPrefix(topic) : Substring(topic)
            let slashes = counted.reduce(0) { $0 + ($1 == "/" ? 1 : 0) }
            if slashes > maxTopicSlashes {
                return "topic would have \(slashes) '/' separators; AWS IoT Core allows \(maxTopicSlashes)"
            }
        }
        return nil
    }

    /// Why a topic template can never produce a publishable topic, or nil.
    /// `{gateway}` is the gateway's name, known already; other variables are
    /// assumed as short as possible (one byte, no `/`).
    public func problem(withTemplate template: TopicTemplate, gateway: String) -> String? {
        let shortest = template.parts.map { part -> String in
            switch part {
            case .literal(let text): return text
            case .variable(let name): return name == "gateway" ? gateway : "x"
            }
        }.joined()
        let bytes = shortest.utf8.count
        if bytes > maxTopicBytes {
            return "topic is at least \(bytes) bytes long; the limit is \(maxTopicBytes)"
        }
        guard profile == .awsIotCore else { return nil }
        if template.text.hasPrefix("$") {
            if let reason = AWSReservedTopic.templateProblem(template, gateway: gateway) { return reason }
        }
        if let maxTopicSlashes {
            let counted = AWSReservedTopic.classify(shortest) == .basicIngest
                ? AWSReservedTopic.stripBasicIngestPrefix(shortest) : Substring(shortest)
            let slashes = counted.reduce(0) { $0 + ($1 == "/" ? 1 : 0) }
            if slashes > maxTopicSlashes {
                return "topic has at least \(slashes) '/' separators; AWS IoT Core allows \(maxTopicSlashes) (a $aws/rules/<rule>/ prefix does not count)"
            }
        }
        return nil
    }
}

/// The `$`-topics AWS IoT Core lets a device publish to: Basic Ingest
/// (`$aws/rules/<rule>/...`) and Device Shadow requests
/// (`$aws/things/<thing>/shadow[/name/<shadow>]/update|get|delete`).
enum AWSReservedTopic: Equatable {
    case ordinary
    case basicIngest
    case shadow
    case invalid(String)

    static let shadowActions: Set<Substring> = ["update", "get", "delete"]

    static func classify(_ topic: String) -> AWSReservedTopic {
        guard topic.hasPrefix("$") else { return .ordinary }
        let levels = topic.split(separator: "/", omittingEmptySubsequences: false)
        if levels.count >= 4, levels[0] == "$aws", levels[1] == "rules" {
            guard isRuleName(levels[2]) else {
                return .invalid("'\(levels[2])' is not an AWS IoT rule name (letters, digits and '_')")
            }
            guard levels[3...].allSatisfy({ !$0.isEmpty }) else {
                return .invalid("a Basic Ingest topic needs a topic after $aws/rules/<rule>/")
            }
            return .basicIngest
        }
        if levels.count >= 5, levels[0] == "$aws", levels[1] == "things", levels[3] == "shadow" {
            guard isThingName(levels[2]) else { return .invalid("'\(levels[2])' is not an AWS IoT thing name") }
            if levels.count == 5, shadowActions.contains(levels[4]) { return .shadow }
            if levels.count == 7, levels[4] == "name", isThingName(levels[5]), shadowActions.contains(levels[6]) { return .shadow }
            return .invalid("a Device Shadow topic is $aws/things/<thing>/shadow[/name/<shadow>]/update|get|delete")
        }
        return .invalid("AWS IoT Core accepts '$' topics only for Basic Ingest ($aws/rules/<rule>/...) and Device Shadow ($aws/things/<thing>/shadow/...)")
    }

    /// Checks a `$` template level by level: the fixed words must be
    /// literal; names may come from variables (checked again at run time).
    static func templateProblem(_ template: TopicTemplate, gateway: String) -> String? {
        let sample = template.parts.map { part -> String in
            switch part {
            case .literal(let text): return text
            case .variable(let name): return name == "gateway" ? gateway : "v"
            }
        }.joined()
        let levels = sample.split(separator: "/", omittingEmptySubsequences: false)
        let literalLevels = template.text.split(separator: "/", omittingEmptySubsequences: false)
        func literal(_ index: Int) -> Bool { index < literalLevels.count && !literalLevels[index].contains("{") }
        if levels.count >= 2, levels[0] == "$aws", levels[1] == "rules", literal(0), literal(1) {
            guard levels.count >= 4 else { return "a Basic Ingest topic needs a topic after $aws/rules/<rule>/" }
            // A rule name written out must be one AWS accepts; one from a
            // variable is checked per message.
            if literal(2), !isRuleName(levels[2]) {
                return "'\(levels[2])' is not an AWS IoT rule name (letters, digits and '_')"
            }
            return nil
        }
        if levels.count >= 4, levels[0] == "$aws", levels[1] == "things", levels[3] == "shadow", literal(0), literal(1), literal(3) {
            let tail = levels.count == 5 ? [4] : [4, 6]
            guard tail.allSatisfy(literal) else {
                return "the shadow action (update, get, delete) and 'name' must be written out, not variables"
            }
            if case .invalid(let reason) = classify(sample) { return reason }
            return nil
        }
        if case .invalid(let reason) = classify(sample) { return reason }
        return nil
    }

    static func stripBasicIngestPrefix(_ topic: String) -> Substring {
        var rest = Substring(topic)
        for _ in 0..<3 {
            guard let slash = rest.firstIndex(of: "/") else { return rest }
            rest = rest[rest.index(after: slash)...]
        }
        return rest
    }

    static func isRuleName(_ name: Substring) -> Bool {
        !name.isEmpty && name.count <= 128 && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
        }
    }

    static func isThingName(_ name: Substring) -> Bool {
        !name.isEmpty && name.count <= 128 && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || $0 == ":" || $0 == "_" || $0 == "-"
        }
    }
}
