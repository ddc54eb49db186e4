/// The kinds of mapping the gateway answers differently for; each is one
/// tag of the document.
enum MappingKind: String, CaseIterable {
    case publish
    case shadow
    case commands

    init(_ rule: MappingRule) {
        if rule.shadow != nil {
            self = .shadow
        } else if rule.commands != nil {
            self = .commands
        } else {
            self = .publish
        }
    }

    var tag: String {
        switch self {
        case .publish: return "readings"
        case .shadow: return "shadows"
        case .commands: return "commands"
        }
    }

    var tagDescription: String {
        switch self {
        case .publish:
            return "Mappings that publish the request body to an MQTT topic (through the on-disk outbox)."
        case .shadow:
            return "Mappings bound to a thing's Device Shadow: GET reads it, PUT and POST update it; the answer is AWS's."
        case .commands:
            return "Mappings that hand a device the commands an application published for it on MQTT."
        }
    }
}
