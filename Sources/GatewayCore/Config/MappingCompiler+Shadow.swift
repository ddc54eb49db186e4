import Yams

extension MappingCompiler {
    static let shadowKeys = ["thing", "name", "answer", "timeout", "offline"]

    /// `shadow: {thing: "{device}", name: config, answer: state, timeout: 5s, offline: refuse}`,
    /// and the update topic it implies (checked like any topic).
    func shadowBinding(
        _ node: Node, resource: ResourcePattern?, builtIn: Set<String>, reader: NodeReader
    ) -> (ShadowBinding, TopicTemplate)? {
        guard let entries = reader.mapping(node, what: "shadow", allowed: Self.shadowKeys) else { return nil }
        var ok = true
        let known = Set(resource?.variables ?? []).union(builtIn)

        /// One topic level: literal parts in AWS's name alphabet, variables the resource has.
        func level(_ key: String, what: String, limit: Int) -> TopicTemplate? {
            guard let value = entries[key], let text = reader.string(value, what: "shadow \(key)") else { return nil }
            switch TopicTemplate.parse(text) {
            case .failure(let error):
                reader.fail("shadow \(key): \(error.description)", at: value)
            case .success(let template):
                if let unknown = template.variables.first(where: { !known.contains($0) }) {
                    reader.fail("shadow \(key) uses {\(unknown)}, which is not a variable of the resource", at: value)
                    return nil
                }
                for part in template.parts {
                    if case .literal(let fixed) = part, !fixed.unicodeScalars.allSatisfy(ShadowAddress.isAllowed) {
                        reader.fail("shadow \(key) '\(text)': a \(what) may hold only letters, digits, ':', '_' and '-'", at: value)
                        return nil
                    }
                }
                if template.variables.isEmpty, template.text.utf8.count > limit {
                    reader.fail("shadow \(key): a \(what) is at most \(limit) bytes", at: value)
                    return nil
                }
                return template
            }
            return nil
        }

        var thing: TopicTemplate?
        if entries.required("thing", in: "shadow") != nil {
            thing = level("thing", what: "thing name", limit: 128)
            if thing == nil { ok = false }
        }
        var name: TopicTemplate?
        if entries["name"] != nil {
            name = level("name", what: "shadow name", limit: 64)
            if name == nil { ok = false }
        }
        var answer = ShadowBinding.Answer.document
        if let value = entries["answer"] {
            if let mode: ShadowBinding.Answer = reader.choice(value, what: "shadow answer") { answer = mode } else { ok = false }
        }
        var timeout = 5.0
        if let value = entries["timeout"] {
            if let seconds = reader.duration(value, what: "shadow timeout"), (0.1...60).contains(seconds) {
                timeout = seconds
            } else {
                reader.fail("shadow timeout must be a duration between 100ms and 60s", at: value)
                ok = false
            }
        }
        var offline = ShadowBinding.Offline.refuse
        if let value = entries["offline"] {
            if let mode: ShadowBinding.Offline = reader.choice(value, what: "shadow offline") { offline = mode } else { ok = false }
        }
        guard ok, let thing else { return nil }
        let binding = ShadowBinding(thing: thing, name: name, answer: answer, timeout: timeout, offline: offline)
        switch TopicTemplate.parse(binding.updateTopicText) {
        case .failure(let error):
            reader.fail("shadow: \(error.description)", at: node)
            return nil
        case .success(let template):
            if let problem = limits.problem(withTemplate: template, gateway: gateway) {
                reader.fail("shadow: \(problem)", at: node)
                return nil
            }
            return (binding, template)
        }
    }
}
