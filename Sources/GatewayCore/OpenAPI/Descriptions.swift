/// The document's prose that depends on more than one value.
enum Descriptions {
    static let info = """
        What iot-gateway answers over HTTP, generated from its mapping table by \
        `iot-gateway openapi --config FILE`. Each path is a mapping (or several with one \
        resource shape, each method going to the first that lists it, as the gateway routes). \
        Errors are `text/plain` with a short diagnostic. A method a path does not list is \
        answered 405 with `Allow` naming the methods it does (see \
        `components.responses.MethodNotAllowed`); a path no mapping has, 404. The only query \
        parameter the gateway reads is `wait`, on GETs of shadow and commands mappings. The \
        admin listener (tag `admin`) serves probes and metrics on its own address. CoAP, the \
        other ingress, answers the same table with CoAP codes: see README.md.
        """

    static func pathItem(_ item: PathItems.Item, maxBody: Int) -> String {
        var lines: [String] = []
        for rule in item.rules {
            var text = "`\(rule.name)` (\(rule.resource.text)): "
            switch MappingKind(rule) {
            case .publish:
                text += "publishes to `\(rule.topic.text)` at QoS \(rule.qos.rawValue)" + (rule.retain ? ", retained" : "")
                text += ", payload: \(rule.payload.rawValue)" + (rule.batch ? ", batch" : "")
                if let expiry = rule.expiry { text += "; dropped unsent after \(duration(expiry))" }
            case .shadow:
                let shadow = rule.shadow!
                text += "the " + (shadow.name.map { "shadow named `\($0.text)`" } ?? "classic shadow") + " of thing `\(shadow.thing.text)`"
                text += " (answer: \(shadow.answer.rawValue), timeout \(duration(shadow.timeout)), offline: \(shadow.offline.rawValue))"
            case .commands:
                let commands = rule.commands!
                text += "commands published on `\(commands.topic.text)`, the newest \(commands.keep) kept for \(duration(commands.expiry)) while the device is away (format: \(commands.format.rawValue))"
            }
            text += ". " + who(rule)
            lines.append(text)
        }
        if item.rules.count > 1 {
            lines.append("Each method goes to the first of these mappings that lists it.")
        }
        let methods = Set(item.methods.map(\.0)).sorted().map(\.rawValue).joined(separator: ", ")
        lines.append("Other methods: 405 with `Allow: \(methods)`.")
        return lines.joined(separator: "\n\n")
    }

    static func who(_ rule: MappingRule) -> String {
        guard rule.auth == .device else { return "Anyone may use it (`auth: anonymous`), over plain HTTP too." }
        var text = "Only an authenticated device, over HTTPS"
        if !rule.allow.isEmpty { text += ", in `allow` (\(rule.allow.joined(separator: ", ")))" }
        if let identity = rule.identity { text += ", whose id is `{\(identity)}`" }
        return text + "."
    }

    /// Seconds as the configuration would write them: `500ms`, `30s`, `10m`, `2h`.
    static func duration(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        for (unit, size) in [("d", 86_400.0), ("h", 3600.0), ("m", 60.0)] where seconds >= size && seconds.truncatingRemainder(dividingBy: size) == 0 {
            return "\(Int(seconds / size))\(unit)"
        }
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
    }
}
