import Yams

extension MappingCompiler {
    static let commandKeys = ["topic", "keep", "expiry", "format"]

    /// `commands: {topic: "cmd/{device}/#", keep: 10, expiry: 1h, format: raw}`;
    /// the topic filter doubles as the mapping's `topic`.
    func commandBinding(
        _ node: Node, resource: ResourcePattern?, builtIn: Set<String>, reader: NodeReader
    ) -> (CommandBinding, TopicTemplate)? {
        guard let entries = reader.mapping(node, what: "commands", allowed: Self.commandKeys) else { return nil }
        var ok = true
        var topic: TopicTemplate?
        if let value = entries.required("topic", in: "commands"), let text = reader.string(value, what: "commands topic") {
            if let problem = Self.filterProblem(text) {
                reader.fail("commands topic '\(text)': \(problem)", at: value)
                ok = false
            } else {
                switch TopicTemplate.parse(text, allowingWildcards: true) {
                case .failure(let error):
                    reader.fail("commands topic: \(error.description)", at: value)
                    ok = false
                case .success(let template):
                    let known = Set(resource?.variables ?? []).union(builtIn)
                    if let unknown = template.variables.first(where: { !known.contains($0) }) {
                        reader.fail("commands topic uses {\(unknown)}, which is not a variable of the resource", at: value)
                        ok = false
                    } else if template.variables.isEmpty || template.variables == [MappingVariables.gateway] {
                        reader.fail("commands topic must name the device through a path variable (e.g. cmd/{device}/#): every device would get every command", at: value)
                        ok = false
                    } else {
                        topic = template
                    }
                }
            }
        }
        var keep = 10
        if let value = entries["keep"] {
            if let number = reader.int(value, what: "commands keep", range: 0...1000) { keep = number } else { ok = false }
        }
        var expiry = 3600.0
        if let value = entries["expiry"] {
            if let seconds = reader.duration(value, what: "commands expiry"), (1...7 * 86_400).contains(seconds) {
                expiry = seconds
            } else {
                reader.fail("commands expiry must be a duration between 1s and 7d", at: value)
                ok = false
            }
        }
        var format = CommandBinding.Format.raw
        if let value = entries["format"] {
            if let chosen: CommandBinding.Format = reader.choice(value, what: "commands format") { format = chosen } else { ok = false }
        }
        guard ok, let topic else { return nil }
        return (CommandBinding(topic: topic, keep: keep, expiry: expiry, format: format), topic)
    }

    /// MQTT's rules for a filter, level by level: `+` and `#` alone in their
    /// level, `#` last, no empty levels at the ends; at most 256 bytes, as AWS allows.
    static func filterProblem(_ text: String) -> String? {
        if text.isEmpty { return "it is empty" }
        if text.hasPrefix("$") { return "'$' topics are the broker's own (shadows have shadow mappings)" }
        if text.utf8.count > 256 { return "it is longer than 256 bytes" }
        let levels = text.split(separator: "/", omittingEmptySubsequences: false)
        for (index, level) in levels.enumerated() {
            if level.isEmpty { return "it has an empty level" }
            if level.contains("#") && (level != "#" || index != levels.count - 1) { return "'#' must be a whole level, and the last" }
            if level.contains("+") && level != "+" { return "'+' must be a whole level" }
        }
        return nil
    }
}
