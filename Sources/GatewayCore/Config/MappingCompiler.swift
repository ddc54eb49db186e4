import Foundation
import Yams

/// Compiles `mappings:` entries, inline or from mapping files, into rules,
/// in order, checking each field and cross-checking names and variables.
struct MappingCompiler {
    static let keys = [
        "name", "resource", "methods", "protocols", "topic", "qos", "retain", "payload", "expiry", "ack", "ack_timeout", "shard_key",
        "auth", "identity", "allow", "shadow", "commands",
    ] + formatKeys
    /// Keys that say how a reading is published: a shadow mapping has none of them.
    static let publishOnlyKeys = ["topic", "qos", "retain", "payload", "expiry", "ack", "ack_timeout", "shard_key", "batch", "accept"]

    let issues: IssueList
    let limits: UpstreamLimits
    /// The gateway's name, for `{gateway}` in the static topic checks.
    let gateway: String
    private(set) var rules: [MappingRule] = []
    private var names: [String: SourceLocation] = [:]
    /// Where each rule's `resource:` is, index for index with `rules`.
    private(set) var resourceLocations: [SourceLocation] = []
    /// Resolves `${NAME}` in mapping files as in the configuration; nil: not at all.
    let environment: [String: String]?

    init(issues: IssueList, limits: UpstreamLimits, gateway: String, environment: [String: String]? = nil) {
        self.issues = issues
        self.limits = limits
        self.gateway = gateway
        self.environment = environment
    }

    /// A mapping file holds one key, `mappings`, with a list of entries.
    mutating func compileFile(_ path: String) {
        let shown = FilePaths.display(path)
        guard let file = YAMLFile.load(path, issues: issues, reportedAs: shown, environment: environment) else { return }
        let reader = NodeReader(file: shown, issues: issues)
        guard let root = file.root else { return }  // an empty file holds no mappings
        guard let top = reader.mapping(root, what: "a mapping file", allowed: ["mappings"]) else { return }
        if let list = top.required("mappings", in: "a mapping file") {
            compileList(list, reader: reader)
        }
    }

    mutating func compileList(_ node: Node, reader: NodeReader) {
        if reader.isNull(node) { return }
        guard let entries = reader.sequence(node, what: "mappings") else { return }
        for entry in entries {
            if let rule = compile(entry, reader: reader) {
                rules.append(rule)
                resourceLocations.append(Self.resourceLocation(entry, reader: reader) ?? rule.location)
            }
        }
    }

    private static func resourceLocation(_ node: Node, reader: NodeReader) -> SourceLocation? {
        guard case .mapping(let mapping) = node, let value = mapping["resource"] else { return nil }
        return reader.location(value)
    }

    private mutating func compile(_ node: Node, reader: NodeReader) -> MappingRule? {
        guard let entries = reader.mapping(node, what: "a mapping", allowed: Self.keys) else { return nil }
        let location = reader.location(node)
        var ok = true

        var name: String?
        if let value = entries.required("name", in: "a mapping"), let text = reader.string(value, what: "name") {
            if text.isEmpty || text.count > 128 || text.unicodeScalars.contains(where: TopicValue.isControl) {
                reader.fail("mapping name must be 1 to 128 printable characters", at: value)
            } else if let first = names[text] {
                reader.fail("duplicate mapping name '\(text)' (first defined at \(first))", at: value)
            } else {
                names[text] = reader.location(value)
                name = text
            }
        }

        var resource: ResourcePattern?
        if let value = entries.required("resource", in: "mapping '\(name ?? "?")'"),
           let text = reader.string(value, what: "resource") {
            switch ResourcePattern.parse(text) {
            case .success(let pattern): resource = pattern
            case .failure(let error): reader.fail(error.description, at: value)
            }
        }

        // Who may use it comes first: it decides whether {device_id} exists.
        var auth = MappingAuth.device
        if let value = entries["auth"] {
            if let chosen: MappingAuth = reader.choice(value, what: "auth") { auth = chosen } else { ok = false }
        }
        var identity: String?
        if let value = entries["identity"], let text = reader.string(value, what: "identity") {
            if auth == .anonymous {
                reader.fail("identity needs an authenticated device; it cannot be used with auth: anonymous", at: value)
                ok = false
            } else if let resource, !resource.variables.contains(text) {
                let known = resource.variables.map { "{\($0)}" }.joined(separator: ", ")
                reader.fail("identity '\(text)' is not a variable of resource '\(resource.text)'\(known.isEmpty ? "" : " (it has \(known))")", at: value)
                ok = false
            } else {
                identity = text
            }
        }
        var allow: [String] = []
        if let value = entries["allow"], let list = reader.stringList(value, what: "allow") {
            if auth == .anonymous {
                reader.fail("allow lists devices and groups; it cannot be used with auth: anonymous", at: value)
                ok = false
            }
            for (text, item) in list {
                if let problem = DeviceID.problem(text) {
                    reader.fail("allow: '\(Router.shorten(text))' is not a device id or group: it \(problem)", at: item)
                    ok = false
                } else if !allow.contains(text) {
                    allow.append(text)
                }
            }
            if list.isEmpty {
                reader.fail("allow must list at least one device or group (leave it out to allow every device)", at: value)
                ok = false
            }
        }
        var builtIn: Set<String> = [MappingVariables.gateway]
        if auth == .device { builtIn.insert(MappingVariables.deviceID) }
        let downlink = entries["commands"] != nil || entries["shadow"] != nil
        let body = downlink ? BodyKeys(accept: []) : bodyKeys(entries, reader: reader)
        if body == nil { ok = false }
        // A SenML batch publishes each record on its own: its topic may name it.
        let perRecord = body?.payload == .senml && body?.batch == true
        if perRecord, let resource, resource.variables.contains(MappingVariables.recordName),
           let node = entries["resource"] {
            reader.fail("resource variable {\(MappingVariables.recordName)} would hide the SenML record's name, which this mapping's topic may use; rename the variable", at: node)
            ok = false
        }
        var topicVariables = builtIn
        if perRecord { topicVariables.insert(MappingVariables.recordName) }

        var topic: TopicTemplate?
        var shadow: ShadowBinding?
        var commands: CommandBinding?
        /// Keys a downlink mapping has no use for, each an error where it is written.
        func refuse(_ keys: [String], in kind: String) {
            for key in keys {
                guard let node = entries[key] else { continue }
                reader.fail("'\(key)' does not apply to \(kind)", at: node)
                ok = false
            }
        }
        if let value = entries["commands"] {
            refuse(Self.publishOnlyKeys + ["shadow"], in: "a commands mapping: it delivers what arrives on its topic filter")
            if let (binding, template) = commandBinding(value, resource: resource, builtIn: builtIn, reader: reader) {
                commands = binding
                topic = template
            } else { ok = false }
        } else if let value = entries["shadow"] {
            refuse(Self.publishOnlyKeys, in: "a shadow mapping: it answers from the thing's shadow topics")
            if let (binding, template) = shadowBinding(value, resource: resource, builtIn: builtIn, reader: reader) {
                shadow = binding
                topic = template
            } else { ok = false }
        } else if let value = entries.required("topic", in: "mapping '\(name ?? "?")'"),
           let text = reader.string(value, what: "topic") {
            switch TopicTemplate.parse(text) {
            case .success(let template):
                topic = template
                if let resource {
                    let known = Set(resource.variables).union(topicVariables)
                    for variable in template.variables where !known.contains(variable) {
                        if variable == MappingVariables.recordName, body?.payload == .senml {
                            reader.fail("topic uses {name}, a SenML record's name: add batch: true so each record is published on its own", at: value)
                        } else if variable == MappingVariables.deviceID {
                            reader.fail("topic uses {device_id}, which only an auth: device mapping has", at: value)
                        } else {
                            reader.fail("topic uses {\(variable)}, which is not a variable of resource '\(resource.text)'", at: value)
                        }
                        topic = nil
                    }
                }
                if let problem = limits.problem(withTemplate: template, gateway: gateway) {
                    reader.fail(problem, at: value)
                    topic = nil
                }
            case .failure(let error):
                reader.fail(error.description, at: value)
            }
        }

        let kind = entries["commands"] != nil ? " to commands" : entries["shadow"] != nil ? " to a shadow" : ""
        let mappable = entries["commands"] != nil ? CommandBinding.methods
            : entries["shadow"] != nil ? ShadowBinding.methods : RequestMethod.publishable
        var methods: [RequestMethod] = entries["commands"] != nil ? CommandBinding.methods
            : entries["shadow"] != nil ? ShadowBinding.methods : [.post, .put]
        if let value = entries["methods"], let list = reader.stringList(value, what: "methods") {
            methods = []
            for (text, item) in list {
                guard let method = RequestMethod(rawValue: text.uppercased()), mappable.contains(method) else {
                    let names = mappable.map(\.rawValue).joined(separator: ", ")
                    reader.fail("method '\(text)' cannot be mapped\(kind); use \(names)", at: item)
                    ok = false
                    continue
                }
                if !methods.contains(method) { methods.append(method) }
            }
            if list.isEmpty {
                reader.fail("methods must list at least one method", at: value)
                ok = false
            }
        }

        var protocols: Set<IngressProtocol> = [.coap, .http]
        if let value = entries["protocols"], let list = reader.stringList(value, what: "protocols") {
            protocols = []
            for (text, item) in list {
                guard let proto = IngressProtocol(rawValue: text.lowercased()) else {
                    reader.fail("protocol '\(text)' is unknown; use coap or http", at: item)
                    ok = false
                    continue
                }
                protocols.insert(proto)
            }
            if list.isEmpty {
                reader.fail("protocols must list at least one protocol", at: value)
                ok = false
            }
        }

        var qos = QoS.atLeastOnce
        if let value = entries["qos"] {
            if let number = reader.int(value, what: "qos", range: 0...2) {
                qos = QoS(rawValue: number)!
                if qos > limits.maxQoS {
                    reader.fail("QoS \(number) is not supported by AWS IoT Core; use 0 or 1 (or upstream.profile: generic)", at: value)
                    ok = false
                }
            } else { ok = false }
        }

        var shardKey: TopicTemplate?
        if let value = entries["shard_key"], let text = reader.string(value, what: "shard_key") {
            switch TopicTemplate.parse(text, allowingWildcards: true) {
            case .success(let template):
                let known = Set(resource?.variables ?? []).union(builtIn)
                if let unknown = template.variables.first(where: { !known.contains($0) }) {
                    reader.fail("shard_key uses {\(unknown)}, which is not a variable of the resource", at: value)
                    ok = false
                } else {
                    shardKey = template
                }
            case .failure(let error):
                reader.fail("shard_key: \(error.description)", at: value)
                ok = false
            }
        }

        var retain = false
        if let value = entries["retain"] {
            if let flag = reader.bool(value, what: "retain") { retain = flag } else { ok = false }
        }

        let link = linkAttributes(entries, accept: body?.accept ?? [], shadow: entries["shadow"] != nil, reader: reader)
        if link == nil { ok = false }

        var expiry: Double?
        if let value = entries["expiry"] {
            if let seconds = reader.duration(value, what: "expiry") {
                if seconds > 0 {
                    expiry = seconds
                } else {
                    reader.fail("expiry must be longer than 0", at: value)
                    ok = false
                }
            } else { ok = false }
        }

        var ack = AckMode.stored
        if let value = entries["ack"] {
            if let chosen: AckMode = reader.choice(value, what: "ack") { ack = chosen } else { ok = false }
        }

        var ackTimeout = 5.0
        if let value = entries["ack_timeout"] {
            if let seconds = reader.duration(value, what: "ack_timeout") {
                if (0.1...300).contains(seconds) {
                    ackTimeout = seconds
                } else {
                    reader.fail("ack_timeout must be between 100ms and 300s", at: value)
                    ok = false
                }
            } else { ok = false }
        }

        if body?.batch == true, ack == .delivered, let node = entries["ack"] {
            reader.fail("ack: delivered does not apply to a batch: a batch is answered once all of it is stored", at: node)
            ok = false
        }
        guard ok, let name, let resource, let topic, let body, let link else { return nil }
        return MappingRule(
            name: name, resource: resource, methods: methods, protocols: protocols, topic: topic,
            qos: qos, retain: retain, payload: body.payload, expiry: expiry, ack: ack, ackTimeout: ackTimeout,
            // A thing's updates queued through an outage share its connection
            // with its live requests (Downlink picks it by thing name).
            shardKey: shadow?.thing ?? shardKey, batch: body.batch, accept: body.accept, link: link, auth: auth, identity: identity, allow: allow, shadow: shadow,
            commands: commands, location: location
        )
    }
}
